"""Loading a Hugging Face masked-LM encoder and reaching its parts (body, MLM head)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    """A fast tokenizer for any HF model name or local folder."""
    return AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)


def load_masked_lm(
    name_or_path: str,
    random_init: bool = False,
    config_overrides: Mapping | None = None,
    trust_remote_code: bool = False,
) -> nn.Module:
    """``AutoModelForMaskedLM`` from a HF name or folder, in train mode.

    ``random_init`` builds the architecture from the config (with ``config_overrides``, e.g. a tiny
    BERT for tests) without loading weights.
    """
    config = AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code, **dict(config_overrides or {}))
    if random_init:
        model = AutoModelForMaskedLM.from_config(config, trust_remote_code=trust_remote_code)
    else:
        model = AutoModelForMaskedLM.from_pretrained(str(name_or_path), config=config, trust_remote_code=trust_remote_code)
    return model.train()  # transformers >= 5 returns eval mode, which would silently switch dropout off


def mlm_head(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The head mapping hidden states ``(n, hidden)`` to vocabulary logits ``(n, vocab)``, or ``None``.

    Applying it only at masked positions avoids the ``(batch, seq, vocab)`` logits tensor, about half of a
    CPU training step. Known heads: BERT family (``cls``), RoBERTa/XLM-R (``lm_head``), DistilBERT.
    """
    for name in ("cls", "lm_head"):
        if isinstance(getattr(model, name, None), nn.Module):
            return getattr(model, name)
    if all(hasattr(model, n) for n in ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector")):
        return lambda h: model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(h))))
    return None
