"""``Encoder``: load any trained or pretrained encoder and embed text with mean pooling.

>>> from declutr import Encoder
>>> vectors = Encoder("outputs/train/<run>").encode(["A sentence.", "Another one."])  # (2, hidden) float32
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from declutr.errors import DeclutrConfigError
from declutr.files.checkpoints import load_checkpoint
from declutr.model.embedding import embed_texts, window_length
from declutr.model.huggingface import MLM_HEAD_FILE, load_masked_lm, looks_local_path
from declutr.model.word_embeddings import REPRESENTATIONS, WordEmbeddingBody
from declutr.tokenizer import load_tokenizer

SOURCES = "a run folder (with model/), a .ckpt file, a model folder with config.json, or a Hugging Face model name"


class Encoder:
    """Sentence embeddings from a run folder, a Lightning checkpoint, a saved/exported folder or a hub name.

    - run folder (``outputs/train/<time>``): its ``model/`` subfolder, written at the end of training;
    - ``*.ckpt``: the encoder weights inside a Lightning checkpoint of this project (no code is unpickled);
    - anything else: a folder with ``config.json`` (this project's exports, sentence-transformers folders,
      ``save_pretrained`` output) or a hub name. Masked-LM saves, and exports with ``mlm_head.safetensors``, keep
      their MLM head in :attr:`model`.

    ``max_length`` is the window in tokens (default: the tokenizer's limit, at most 512); ``dtype`` e.g.
    ``torch.bfloat16`` runs the model in that precision (embeddings are returned as float32 either way).

    Baselines: ``random_init=True`` keeps the source's architecture and tokenizer but draws fresh weights (from
    torch's global generator: seed it for a repeatable baseline); ``representation="word_embeddings"`` averages
    the input word embeddings instead of the last layer's states (no transformer layer at all).
    """

    def __init__(self, path_or_name: str | Path, device: str | torch.device | None = None,
                 max_length: int | None = None, dtype: torch.dtype | str | None = None,
                 random_init: bool = False, representation: str = "last_layer") -> None:
        if representation not in REPRESENTATIONS:
            raise DeclutrConfigError(f"representation={representation!r} is not an option: use one of "
                                     f"{', '.join(REPRESENTATIONS)}.")
        self.source = str(path_or_name)
        self.device = _device(device)
        self.model, self.tokenizer = load_encoder(self.source)
        if random_init:
            self.model = type(self.model)(self.model.config)  # the same architecture, fresh weights
        self.model.to(self.device, dtype=_dtype(dtype)).eval()
        self.max_length = window_length(self.tokenizer, max_length)
        self.representation = representation

    @property
    def body(self) -> torch.nn.Module:
        """What returns ``last_hidden_state``: the transformer without any task head, or (``representation=
        "word_embeddings"``) its input word embeddings."""
        if self.representation == "word_embeddings":
            return WordEmbeddingBody(self.model)
        return self.model.base_model

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    def encode(self, sentences: Sequence[str] | str, batch_size: int = 64, show_progress_bar: bool = False,
               convert_to_numpy: bool = True, convert_to_tensor: bool = False, normalize_embeddings: bool = False,
               long_texts: str = "truncate") -> np.ndarray | torch.Tensor:
        """Embeddings ``(len(sentences), dim)`` float32 in input order (a single string gives ``(dim,)``), with
        ``SentenceTransformer.encode``'s argument names.

        ``normalize_embeddings`` scales each vector to unit length; ``convert_to_tensor`` (or
        ``convert_to_numpy=False``) returns a CPU tensor instead of a numpy array; ``long_texts="chunk"`` averages
        the windows of texts longer than ``max_length`` instead of truncating them.
        """
        single = isinstance(sentences, str)
        vectors = embed_texts(self.body, self.tokenizer, [sentences] if single else sentences, batch_size,
                              self.max_length, long_texts, show_progress_bar)
        if normalize_embeddings:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        vectors = vectors[0] if single else vectors
        return vectors.numpy() if convert_to_numpy and not convert_to_tensor else vectors

    @staticmethod
    def similarity(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Cosine similarities ``(len(a), len(b))`` of two sets of embeddings (single vectors count as one row), as
        ``SentenceTransformer.similarity`` gives with its default cosine function."""
        a, b = (torch.as_tensor(x, dtype=torch.float32) for x in (a, b))
        a, b = (x.unsqueeze(0) if x.dim() == 1 else x for x in (a, b))
        return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T


def load_encoder(path_or_name: str | Path):
    """``(model, tokenizer)`` from any source :class:`Encoder` accepts; raises :class:`DeclutrConfigError`
    naming the path and the fix when the source cannot be loaded."""
    path = Path(path_or_name)
    if path.suffix == ".ckpt":
        return _load_checkpoint(path)
    if path.is_dir() and not (path / "config.json").is_file():
        if not (path / "model" / "config.json").is_file():
            last = path / "checkpoints" / "last.ckpt"  # a run stopped before its end has no model/ yet
            hint = f" (its checkpoint {last} can be passed instead)" if last.is_file() else ""
            raise DeclutrConfigError(f"{path} holds no model{hint}; pass {SOURCES}.")
        path = path / "model"
    elif path.is_file():
        raise DeclutrConfigError(f"{path} is a file but not a .ckpt checkpoint; pass {SOURCES}.")
    elif not path.exists() and looks_local_path(str(path_or_name)):
        raise DeclutrConfigError(f"{path} does not exist; pass {SOURCES}.")
    try:
        if (path / MLM_HEAD_FILE).is_file():  # an export: the encoder with its MLM head beside it (kept by re-exports)
            return load_masked_lm(str(path)), load_tokenizer(str(path))
        config = AutoConfig.from_pretrained(str(path))
        masked_lm = any(a.endswith("ForMaskedLM") for a in config.architectures or [])
        model = (AutoModelForMaskedLM if masked_lm else AutoModel).from_pretrained(str(path), config=config)
        return model, load_tokenizer(str(path))
    except OSError as err:
        reason = " ".join(str(err).split())  # one line
        raise DeclutrConfigError(f"Cannot load {path_or_name!r} ({reason}); pass {SOURCES} (hub names need network "
                                 "access or a local Hugging Face cache).") from None


def _load_checkpoint(path: Path):
    """The encoder inside a Lightning checkpoint of this project (weights only: no code is unpickled)."""
    if not path.is_file():
        raise DeclutrConfigError(f"Checkpoint {path} does not exist; pass {SOURCES}.")
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or "hf_config" not in checkpoint:
        raise DeclutrConfigError(f"{path} is not a DeCLUTR training checkpoint (no hf_config inside); pass {SOURCES}.")
    masked_lm = AutoModelForMaskedLM.from_config(AutoConfig.for_model(**checkpoint["hf_config"]))
    weights = {k.removeprefix("encoder."): v for k, v in checkpoint["state_dict"].items() if k.startswith("encoder.")}
    masked_lm.load_state_dict(weights)
    tokenizer_source = checkpoint["hyper_parameters"]["encoder"]["name_or_path"]
    try:
        return masked_lm, load_tokenizer(tokenizer_source)
    except OSError:
        raise DeclutrConfigError(f"The tokenizer of checkpoint {path}, {tokenizer_source!r}, cannot be loaded here: "
                                 "pass the run's model/ folder instead (it holds the tokenizer).") from None




def _device(device: str | torch.device | None) -> torch.device:
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeclutrConfigError(f"device={device} but CUDA is not available here: use device='cpu' (or leave it unset).")
    return device


def _dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if not isinstance(getattr(torch, str(dtype), None), torch.dtype):
        raise DeclutrConfigError(f"dtype={dtype!r} is not a torch dtype: use float32, bfloat16 or float16.")
    return getattr(torch, str(dtype))
