"""Tokenizer helpers shared by training, preparation and embedding: loading a tokenizer, its identity (what
stored token ids depend on), tokenising a document, the special tokens around a sequence, and padding."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from declutr.errors import DeclutrConfigError


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False, setting: str | None = None):
    """A fast tokenizer for any HF model name or local folder. A local folder without a tokenizer's files raises
    :class:`DeclutrConfigError` naming the ``setting`` that gave the folder, if any."""
    try:
        return AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        folder = Path(str(name_or_path)).expanduser()
        if not folder.is_dir():
            raise  # a hub name or a missing path: the loader's own message says which
        files = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise DeclutrConfigError(
            f"{f'{setting}=' if setting else ''}{name_or_path} holds no tokenizer that loads ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); it has {files}. A model folder needs its tokenizer's files "
            "(tokenizer.json, or vocab.txt / vocab.json) beside config.json, as save_pretrained writes them; a "
            "vocabulary made for a corpus comes from `python run.py task=tokenizer`.") from None


def tokenize_document(tokenizer, text: str) -> list[int]:
    """A document's ids, as both paths hold them: the whole text at once, no special tokens (the collator adds those)."""
    return tokenizer(text, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]


def tokenizer_identity(tokenizer) -> dict:
    """``{"name", "vocab_size", "vocab_sha256"}``: what must match for stored ids to mean the same tokens."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return {"name": str(tokenizer.name_or_path), "vocab_size": len(tokenizer),
            "vocab_sha256": hashlib.sha256(vocab.encode("utf-8")).hexdigest()}


def special_token_template(tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """The ids a tokenizer puts before and after a single sequence (``[CLS]``/``[SEP]``, ``<s>``/``</s>``).

    Read off by encoding a probe word with and without special tokens, so it works for any tokenizer
    whose single-sequence template is ``prefix + ids + suffix``.
    """
    plain = tokenizer.encode("hello", add_special_tokens=False)
    full = tokenizer.encode("hello", add_special_tokens=True)
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return np.asarray(full[:start], dtype=np.int64), np.asarray(full[start + len(plain) :], dtype=np.int64)
    raise ValueError(f"Cannot find where {type(tokenizer).__name__} puts its special tokens.")


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence: ``(input_ids, attention_mask)``, both ``(n, max_len)`` int64."""
    length = max((len(s) for s in sequences), default=0)
    ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return torch.from_numpy(ids), torch.from_numpy(mask)
