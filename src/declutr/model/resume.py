"""What a checkpoint and the run resuming it must agree on, checked from the checkpoint's contents before the data
or the model is built: finite weights, the encoder's architecture, the tokenizer's vocabulary and the number of
stream readers. A refused resume has built nothing and written nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch
from omegaconf import DictConfig, OmegaConf

from declutr.errors import DeclutrConfigError
from declutr.model.huggingface import encoder_config

# The HF config keys that fix the shapes of the weights: a checkpoint differing in one cannot load.
ARCHITECTURE_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                     "vocab_size", "max_position_embeddings", "type_vocab_size", "embedding_size")
TOKENIZER_KEY = "tokenizer"  # the checkpoint's record of its tokenizer (see tokenizer_record)
DATA_STATE_KEY = "DeCLUTRDataModule"  # where Lightning keeps the datamodule's state (its class name)


def tokenizer_record(tokenizer) -> dict:
    """What identifies a tokenizer: its size and a hash of its vocabulary (token -> id)."""
    vocab = sorted(tokenizer.get_vocab().items())
    digest = hashlib.sha256("\n".join(f"{token}\t{index}" for token, index in vocab).encode()).hexdigest()
    return {"vocab_size": len(vocab), "vocab_sha256": digest}


def check_resume(checkpoint: Mapping, cfg: DictConfig, tokenizer, path: str) -> None:
    """Refuse to resume from ``checkpoint`` (read from ``path``) when it cannot continue as the run ``cfg``."""
    problems = [*_weights(checkpoint), *_architecture(checkpoint, cfg), *_tokenizer(checkpoint, tokenizer),
                *_readers(checkpoint, cfg)]
    if problems:
        raise DeclutrConfigError(f"ckpt_path={path} cannot resume this run:\n  - " + "\n  - ".join(problems))


def _weights(checkpoint: Mapping) -> list[str]:
    bad = [name for name, tensor in (checkpoint.get("state_dict") or {}).items()
           if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if not bad:
        return []
    return [f"{len(bad)} of its weight tensors hold NaN or infinite values (e.g. {bad[0]}): it is not a state to "
            "continue from; use an earlier checkpoint of the run (the best one, or one saved before it diverged)."]


def _architecture(checkpoint: Mapping, cfg: DictConfig) -> list[str]:
    saved = checkpoint.get("hf_config")
    if not saved:
        return []
    encoder = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    wanted = encoder_config(**{key: encoder[key] for key in ("name_or_path", "random_init", "config_overrides",
                                                             "trust_remote_code") if key in encoder}).to_dict()
    differ = [f"{key} {saved.get(key)!r} -> {wanted.get(key)!r}" for key in ARCHITECTURE_KEYS
              if saved.get(key) != wanted.get(key)]
    if not differ:
        return []
    return [f"its encoder has another architecture than model.encoder here ({', '.join(differ)}): resume with the "
            "model settings of the run that saved it (its <run>/.hydra/config.yaml), e.g. the same model=<option>."]


def _tokenizer(checkpoint: Mapping, tokenizer) -> list[str]:
    saved = checkpoint.get(TOKENIZER_KEY)
    if not saved or saved == tokenizer_record(tokenizer):
        return []
    return [f"it was trained with another tokenizer ({saved['vocab_size']} tokens, vocabulary sha256 "
            f"{saved['vocab_sha256'][:12]}) than model.encoder.name_or_path's here ({len(tokenizer.get_vocab())} "
            "tokens): resume with the encoder of the run that saved it."]


def _readers(checkpoint: Mapping, cfg: DictConfig) -> list[str]:
    state = checkpoint.get(DATA_STATE_KEY) or {}
    saved = state.get("num_shards")
    devices, nodes = (OmegaConf.select(cfg, key, default=1) for key in ("trainer.devices", "trainer.num_nodes"))
    workers = OmegaConf.select(cfg, "data.num_workers", default=0)
    if not state.get("consumed") or saved is None or not all(isinstance(n, int) for n in (devices, nodes, workers)):
        return []  # nothing read yet, or a device count only Lightning resolves (the datamodule checks it then)
    readers = devices * nodes * max(1, workers)
    if saved == readers:
        return []
    return [f"its data position was saved with {saved} readers (devices x data.num_workers) and this run has "
            f"{readers}: resume with the devices and data.num_workers of the run that saved it."]
