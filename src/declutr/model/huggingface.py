"""Hugging Face models: loading a masked-LM encoder, reaching its parts (body, MLM head), the positions a sequence
may use (read by the data check :func:`declutr.data.checks.check_spans_fit_model`), and the start-up check of the
model's source folder."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn
from transformers import MODEL_FOR_MASKED_LM_MAPPING, AutoConfig, AutoModelForMaskedLM

from declutr.errors import DeclutrConfigError

# An export's MLM head, beside the encoder-only model.safetensors (see declutr.export.folder): the weights of the
# masked LM outside its base model, names as in the masked LM; its metadata names the base model's prefix.
MLM_HEAD_FILE = "mlm_head.safetensors"

# What a config built for another architecture keeps of the source's: its tokenizer's vocabulary and special ids.
TOKENIZER_KEYS = ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id")


def encoder_config(
    name_or_path: str, random_init: bool = False, config_overrides: Mapping | None = None, trust_remote_code: bool = False,
    attn_implementation: str | None = None,
):
    """The HF config of ``name_or_path`` with ``config_overrides`` applied (arguments as :func:`load_masked_lm`'s;
    ``attn_implementation`` is a loading choice, not part of the config, and is not used here).

    ``config_overrides.model_type`` naming another architecture (e.g. ``roberta-prelayernorm``) builds that
    architecture's config instead, keeping the source's vocabulary size and special-token ids so its tokenizer
    still fits; such a config has no weights to load, so it needs ``random_init``.
    """
    overrides = dict(config_overrides or {})
    model_type = overrides.pop("model_type", None)
    if model_type is None:  # the common case: one read of the source's config
        return AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code, **overrides)
    config = AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
    if model_type == config.model_type:
        return AutoConfig.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code, **overrides)
    if not random_init:
        raise DeclutrConfigError(
            f"model.encoder.config_overrides.model_type={model_type!r} asks for another architecture than "
            f"{name_or_path}'s {config.model_type!r}, whose weights cannot load into it: set model.encoder.random_init=true "
            "(fresh weights), or remove the model_type override.")
    kept = {key: getattr(config, key) for key in TOKENIZER_KEYS if getattr(config, key, None) is not None}
    try:
        return AutoConfig.for_model(model_type, **{**kept, **overrides})
    except ValueError as error:
        raise DeclutrConfigError(f"model.encoder.config_overrides.model_type={model_type!r} is not an architecture "
                                 f"transformers knows ({error}). Use a model_type such as bert or "
                                 "roberta-prelayernorm.") from None


def load_masked_lm(
    name_or_path: str,
    random_init: bool = False,
    config_overrides: Mapping | None = None,
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
) -> nn.Module:
    """``AutoModelForMaskedLM`` from a HF name or folder, in train mode.

    An exported folder (see :func:`declutr.export.write_export`) holds the encoder alone and its trained MLM head in
    ``mlm_head.safetensors``: the two are loaded together, so pretraining goes on with the trained head.
    ``random_init`` builds the architecture from the config (with ``config_overrides``, e.g. a tiny
    BERT for tests) without loading weights. ``attn_implementation`` (``eager``, ``sdpa``,
    ``flash_attention_2``) picks the attention kernels; ``None`` leaves transformers' choice (SDPA where supported).
    """
    config = encoder_config(name_or_path, random_init, config_overrides, trust_remote_code)
    attention = {"attn_implementation": attn_implementation} if attn_implementation else {}
    if random_init:
        model = AutoModelForMaskedLM.from_config(config, trust_remote_code=trust_remote_code, **attention)
    elif (state := exported_masked_lm_state(name_or_path)) is not None:  # (a state dict goes with no path)
        model = _masked_lm_class(config, trust_remote_code).from_pretrained(None, config=config, state_dict=state,
                                                                            **attention)
    else:
        model = AutoModelForMaskedLM.from_pretrained(str(name_or_path), config=config, trust_remote_code=trust_remote_code,
                                                     **attention)
    return model.train()  # transformers >= 5 returns eval mode, which would silently switch dropout off


def _masked_lm_class(config, trust_remote_code: bool) -> type:
    """The class ``AutoModelForMaskedLM`` builds for ``config`` (for remote code: built on the meta device, no memory
    and no initialisation)."""
    if type(config) in MODEL_FOR_MASKED_LM_MAPPING:
        return MODEL_FOR_MASKED_LM_MAPPING[type(config)]
    with torch.device("meta"):
        return type(AutoModelForMaskedLM.from_config(config, trust_remote_code=trust_remote_code))


def exported_masked_lm_state(folder: str | Path) -> dict[str, torch.Tensor] | None:
    """The masked LM's state dict of an exported ``folder``, its encoder (``model.safetensors``, or the shards of
    ``model.safetensors.index.json``) under the base model's prefix with its MLM head (:data:`MLM_HEAD_FILE`); ``None``
    where ``folder`` is no local folder with that head file. Encoder weights the masked LM lacks (BERT's pooler,
    saved so that ``AutoModel`` loads the folder without missing weights) are left out."""
    folder = Path(folder)
    if not (folder / MLM_HEAD_FILE).is_file():
        return None
    with safe_open(str(folder / MLM_HEAD_FILE), framework="pt") as file:
        metadata = file.metadata() or {}
        head = {name: file.get_tensor(name) for name in file.keys()}
    if "base_model_prefix" not in metadata:
        raise DeclutrConfigError(f"{folder / MLM_HEAD_FILE} names no base_model_prefix in its metadata: it was not "
                                 "written by declutr's export; remove it to load the folder without its MLM head.")
    prefix, encoder_only = metadata["base_model_prefix"], set(json.loads(metadata.get("encoder_only_keys", "[]")))
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    encoder = {name: tensor for file in files for name, tensor in load_file(str(folder / file)).items()}
    return {f"{prefix}.{name}": tensor for name, tensor in encoder.items() if name not in encoder_only} | head


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


# Architectures whose position ids start after the padding id (RoBERTa's), so max_position_embeddings - pad - 1 fit.
PADDING_OFFSET_POSITIONS = ("roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "camembert")


def model_max_tokens(tokenizer, encoder: Mapping) -> int:
    """Longest input (special tokens included) the encoder accepts."""
    config = encoder_config(**encoder)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and config.model_type in PADDING_OFFSET_POSITIONS:
        positions -= config.pad_token_id + 1
    limits = [positions, tokenizer.model_max_length]
    return min(int(x) for x in limits if x is not None and x < 1_000_000)


def check_vocabulary_fits(tokenizer, encoder: Mapping) -> None:
    """The tokenizer's ids must all index the model's word embeddings: a tokenizer with more tokens than the config's
    ``vocab_size`` (another vocabulary than the model's) fails here, not as an index error inside the first step."""
    size = getattr(encoder_config(**encoder), "vocab_size", None)
    if size is not None and len(tokenizer) > size:
        raise DeclutrConfigError(
            f"model.encoder.name_or_path={encoder['name_or_path']}: its tokenizer has {len(tokenizer):,} tokens, but the "
            f"model's config has vocab_size={size:,}, so ids from {size:,} on have no embedding. Use the tokenizer the "
            "model was made with, or (with model.encoder.random_init=true) set "
            f"model.encoder.config_overrides.vocab_size={len(tokenizer)}.")


def check_encoder_source(encoder: Mapping) -> None:
    """``model.encoder.name_or_path`` that is meant as a local folder must hold a model (``config.json``): a base
    still to be trained, a typo or a run folder fail here, not deep inside Hugging Face's loader."""
    name = str(encoder["name_or_path"])
    path = Path(name).expanduser()
    if not (path.exists() or looks_local_path(name)):
        return  # a hub name
    if (path / "config.json").is_file():
        return
    hint = ""
    if (path / "model" / "config.json").is_file():
        hint = f" It is a run folder: use {path / 'model'}."
    elif path.name == "model" and (path.parent / "checkpoints" / "last.ckpt").is_file():
        hint = (f" Its run stopped before the end: resume it with ckpt_path={path.parent / 'checkpoints' / 'last.ckpt'}"
                " (and the run's own settings).")
    what = "does not exist" if not path.exists() else "is not a model folder (no config.json)"
    raise DeclutrConfigError(
        f"model.encoder.name_or_path={name} {what}.{hint} Pass a Hugging Face model name or a folder written by "
        "save_pretrained or by training (<run>/model); the miniature's base is made by "
        "`python run.py experiment=mlm_base`."
    )


def looks_local_path(name: str) -> bool:
    """Whether ``name`` is meant as a local path: a hub name is ``name`` or ``owner/name``."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
