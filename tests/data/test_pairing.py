"""Each anchor stays paired with its own document's positives from the files to the batch: documents whose words
belong to them alone go through the configured datamodule (stream, span sampler, MLM-masking collator), and every
anchor and positive of every batch must be a contiguous run of the ids of the document the batch names for it.
(That anchor i's positives reach the loss in row i is tests/model/test_training_signal.py's.)"""

from pathlib import Path

import numpy as np
import pytest

from declutr.config.instantiate import build
from declutr.tokenizer import tokenize_document
from tests.helpers.paths import DATA_DIR

DOCUMENTS, WORDS_EACH, LENGTH = 8, 600, 64


@pytest.fixture
def corpus(tokenizer, tmp_path) -> dict[Path, np.ndarray]:
    """``{file: its token ids}``: 8 text files of 600 words, each word one token of its document's own 100."""
    vocabulary = sorted(token for token in tokenizer.vocab if token.isalpha() and token.islower() and len(token) >= 4)
    rng = np.random.default_rng(0)
    words = rng.permutation(vocabulary)[: DOCUMENTS * 100].reshape(DOCUMENTS, 100)
    documents = {}
    for k, own in enumerate(words):
        text = " ".join(rng.choice(own, WORDS_EACH))
        path = tmp_path / "corpus" / f"doc{k}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        documents[path] = np.asarray(tokenize_document(tokenizer, text))
        assert len(documents[path]) == WORDS_EACH, "one token a word: a token names its document"
    return documents


def contains(document: np.ndarray, span: np.ndarray) -> bool:
    """Whether ``span`` is a contiguous run of ``document``."""
    windows = np.lib.stride_tricks.sliding_window_view(document, len(span))
    return bool((windows == span).all(axis=1).any())


def test_every_span_comes_from_the_document_the_batch_names_for_its_anchor(make_config, tokenizer, corpus):
    cfg = make_config("model=tiny", f"data.files=[{next(iter(corpus)).parent}]", f"paths.data_dir={DATA_DIR}",
                      "data.sampler.min_span_len=32", f"data.sampler.max_span_len={LENGTH}", "data.num_workers=0")
    datamodule = build(cfg.data, tokenizer=tokenizer)
    anchors_each, positives_each = cfg.data.sampler.num_anchors, cfg.data.sampler.num_positives
    batches = list(datamodule.train_dataloader())
    assert sum(len(batch["docs"]) for batch in batches) == DOCUMENTS
    for batch in batches:
        assert "mlm_labels" in batch and batch["num_positives"] == positives_each > 1
        masked = batch["mlm_labels"] != -100
        anchors = np.where(masked, batch["mlm_labels"], batch["anchor_input_ids"])  # the ids before masking
        positives = batch["positive_input_ids"].numpy()
        assert len(anchors) == anchors_each * len(batch["docs"]) and len(positives) == positives_each * len(anchors)
        for i, anchor in enumerate(anchors):
            key = batch["docs"][i // anchors_each]
            (document,) = (ids for path, ids in corpus.items() if key.startswith(str(path)))
            spans = [anchor[batch["anchor_attention_mask"][i].bool().numpy()]]
            for row in range(i * positives_each, (i + 1) * positives_each):  # anchor i's positives
                spans.append(positives[row][batch["positive_attention_mask"][row].bool().numpy()])
            for span in spans:
                body = span[1:-1]  # without [CLS] and [SEP]
                assert 32 <= len(body) <= LENGTH
                assert contains(document, body), f"anchor {i} ({key}): a span that is not a run of its document"
