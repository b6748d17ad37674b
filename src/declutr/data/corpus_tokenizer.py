"""A WordPiece vocabulary made for a prepared corpus (uncased, BERT's pipeline), saved as a Hugging Face model
source without weights: the tokenizer files and a BERT ``config.json`` sized to the vocabulary, so
``model.encoder.name_or_path=<folder> model.encoder.random_init=true`` builds a fresh encoder that tokenises with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertTokenizerFast

from declutr.data.prepare import chunks

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def train_wordpiece(texts: Iterable[str], vocab_size: int, min_frequency: int = 2,
                    lowercase: bool = True) -> BertTokenizerFast:
    """A WordPiece tokenizer of at most ``vocab_size`` tokens (special tokens included) learnt from ``texts``, with
    BERT's normalisation (``lowercase``, accents stripped when lowercasing) and ``[CLS] ... [SEP]`` around a sequence."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                        special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return BertTokenizerFast(tokenizer_object=tokenizer, do_lower_case=lowercase, unk_token="[UNK]",
                             pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def save_model_source(tokenizer: BertTokenizerFast, folder: Path, max_positions: int = 512) -> None:
    """``folder`` as a model source without weights: the tokenizer and BERT's default config with this vocabulary
    (the model option sets the architecture through ``model.encoder.config_overrides``)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(folder))
    BertConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
               max_position_embeddings=max_positions).save_pretrained(str(folder))


def token_counts(tokenizer, texts: Iterable[str], batch: int = 256) -> Counter:
    """How often each token id occurs in ``texts`` (no special tokens)."""
    counts: Counter = Counter()
    for group in chunks(texts, batch):
        for ids in tokenizer(group, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]:
            counts.update(ids)
    return counts

