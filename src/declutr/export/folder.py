"""Write an encoder as one folder that Hugging Face, sentence-transformers and our ``Encoder`` all load.

Layout: ``save_pretrained`` of the sentence encoder (the model without any task head, exactly the model ``AutoModel``
builds, so that it and sentence-transformers load it without a missing or unexpected weight) and of the tokenizer at
the root (``config.json``, ``model.safetensors``, tokenizer files); a masked LM's head, which further pretraining
needs, beside it in ``mlm_head.safetensors`` (read back by :func:`~declutr.model.huggingface.load_masked_lm`); the
sentence-transformers files (see :mod:`declutr.export.st_layout`), ``README.md`` (the model card),
``declutr_config.yaml`` (the full config of a run trained here, which the card links) and ``declutr_training.json``
(the record the card was made from).
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import AutoModel

from declutr.errors import DeclutrConfigError, DeclutrRunError
from declutr.export.model_card import CONFIG_FILE, config_yaml, portable_record, render_model_card
from declutr.export.provenance import RECORD_FILE, TrainingRecord
from declutr.export.st_layout import st_layout
from declutr.files.atomic import unique_sibling
from declutr.model.embedding import window_length
from declutr.model.finite import check_finite_weights
from declutr.model.huggingface import MLM_HEAD_FILE

HEAD_NOTE = ("The masked-language-model head of this encoder (weights outside the base model, names as in the masked "
             "LM), kept for further pretraining: declutr's load_masked_lm (model.encoder.name_or_path=<this folder>) "
             "loads it with model.safetensors. Sentence embeddings do not use it.")


def write_export(model, tokenizer, target: str | Path, record: TrainingRecord, window: int | None = None,
                 overwrite: bool = False, license: str = "apache-2.0", language: str = "en") -> Path:
    """Write ``model`` (any ``PreTrainedModel``; a masked LM's head goes to ``mlm_head.safetensors``) and ``tokenizer``
    to ``target``.

    ``window`` is the truncation length written for sentence-transformers (default: the tokenizer's limit,
    at most 512, as :func:`~declutr.model.embedding.embed_texts` uses); ``record``, ``license`` and ``language``
    feed the model card.

    Everything goes to a temporary sibling folder of this call's own first, which then replaces ``target``: a
    crash never leaves half an export, and two processes exporting to one ``target`` never delete each other's
    work. An existing ``target`` is replaced only with ``overwrite`` and only if it is a model folder (has
    ``config.json``) or empty. Weights holding NaN or infinite values are refused
    (:class:`~declutr.errors.DeclutrNumericalError`).
    """
    target = Path(target)
    _check_target(target, overwrite)
    check_finite_weights(model, f"Export to {target} refused")  # a diverged or damaged state is never a model
    record = portable_record(record)  # no local absolute path in the folder
    tmp = unique_sibling(target)  # this call's own: another process exporting to target cannot delete it
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        _write_folder(tmp, model, tokenizer, record, target.resolve().name, window, license, language)
        _swap(tmp, target, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after the swap; a failed export leaves nothing behind
    return target


def _write_folder(folder: Path, model, tokenizer, record: TrainingRecord, name: str, window: int | None,
                  license: str, language: str) -> None:
    """Every file of the export into ``folder``; ``name`` titles the model card."""
    encoder, head, metadata = split_masked_lm(model)
    encoder.save_pretrained(folder)
    if head:
        save_file(head, str(folder / MLM_HEAD_FILE), metadata=metadata)
    tokenizer.save_pretrained(folder)
    dim, window = model.config.hidden_size, window_length(tokenizer, window)
    for relative, content in st_layout(dim, window).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(json.dumps(content, indent=2))
    (folder / "README.md").write_text(render_model_card(record, name, dim, window, license, language))
    config = config_yaml(record)
    if config is not None:
        (folder / CONFIG_FILE).write_text(config)
    (folder / RECORD_FILE).write_text(record.to_json())


def split_masked_lm(model) -> tuple:
    """``(encoder, head, metadata)`` of ``model``: the sentence encoder to save, the state dict of the task head
    (weights outside the base model, minus those tied to another weight: loading ties them again), and the head
    file's metadata. A model without a head is its own encoder (``head`` empty).

    The encoder is the model ``AutoModel`` builds from the config, holding the base model's weights: weights the
    masked LM lacks (BERT's pooler, which DeCLUTR's mean pooling never uses or trains) keep the values they are
    initialised with (seeded, so every export of one model is the same), and loading reports none missing. An
    architecture ``AutoModel`` does not build that way saves its base model as it is.
    """
    base = model.base_model
    if base is model:
        return model, {}, {}
    prefix = model.base_model_prefix
    encoder, encoder_only = _auto_model(model)
    tied = set(getattr(model, "all_tied_weights_keys", None) or {})
    head = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()
            if not name.startswith(f"{prefix}.") and name not in tied}  # clones: safetensors refuses shared tensors
    metadata = {"format": "pt", "note": HEAD_NOTE, "base_model_prefix": prefix, "masked_lm": type(model).__name__,
                "encoder_only_keys": json.dumps(encoder_only)}
    return encoder, head, metadata


def _auto_model(model) -> tuple:
    """``(encoder, names)``: ``model.base_model`` as the model ``AutoModel`` builds for its config, and the names of
    that model's weights the base model lacks; the base model itself and ``[]`` where no such model takes all its
    weights."""
    try:
        with torch.random.fork_rng(devices=[]):  # the training's random state is left as it was
            torch.manual_seed(0)
            encoder = AutoModel.from_config(copy.deepcopy(model.config), dtype=model.dtype)
    except ValueError:  # an architecture AutoModel does not know (remote code)
        return model.base_model, []
    result = encoder.load_state_dict(model.base_model.state_dict(), strict=False)
    if result.unexpected_keys:
        return model.base_model, []
    return encoder, sorted(result.missing_keys)


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return
    if not overwrite:
        raise DeclutrConfigError(f"{target} already exists: set export.overwrite=true (overwrite=True) to replace "
                                 "it, or choose another export.output.")
    if not (target / "config.json").is_file():
        raise DeclutrConfigError(f"{target} exists and is not a model folder (no config.json): refusing to replace "
                                 "it; choose another export.output.")


def _swap(tmp: Path, target: Path, overwrite: bool) -> None:
    """Put the folder ``tmp`` in place of ``target``. A folder cannot be renamed over a non-empty one, so an existing
    ``target`` is first moved aside under a name of this call's own, then deleted. If another process puts its
    export at ``target`` in between, the rename fails rather than mix or silently replace the two exports."""
    old = unique_sibling(target, "old")
    try:
        if overwrite:
            with contextlib.suppress(FileNotFoundError):  # no target yet, or another export just moved it aside
                os.replace(target, old)
        os.replace(tmp, target)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        raise DeclutrConfigError(f"{target} was written by another process while this export was being written: "
                                 "export each model to its own folder (export.output).") from None
    finally:
        shutil.rmtree(old, ignore_errors=True)


def check_repo_id(repo_id: str) -> None:
    """A Hub model repo id is ``<user or org>/<name>``, of the characters the Hub allows (checked here, offline)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    parts = str(repo_id).split("/")
    if len(parts) != 2 or not all(parts):
        raise DeclutrConfigError(f"export.hub_model_id={repo_id!r} is not a Hub repo id: set it to <user or org>/<name>.")
    try:
        validate_repo_id(str(repo_id))
    except HFValidationError as err:
        raise hub_push_error(err, "", str(repo_id)) from None


def push_to_hub(folder: str | Path, repo_id: str, private: bool = True, api=None) -> str:
    """Upload an exported ``folder`` to the Hugging Face Hub repo ``repo_id`` (created if missing, ``private`` then);
    returns the commit's URL. Needs a token (``hf auth login`` or ``HF_TOKEN``). A Hub that cannot be reached or
    refuses the upload ends in one :class:`~declutr.errors.DeclutrConfigError` or
    :class:`~declutr.errors.DeclutrRunError` saying what to do (the exported folder stays)."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id)
    try:
        api = api or HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message="Upload a DeCLUTR encoder (declutr task=export)")
    except Exception as err:  # noqa: BLE001 (told apart by hub_push_error; anything else is raised as it is)
        failure = hub_push_error(err, folder, repo_id)
        if failure is None:
            raise
        raise failure from None
    return str(getattr(commit, "commit_url", commit))


def hub_push_error(err: Exception, folder: str | Path, repo_id: str) -> Exception | None:
    """The one-line error for a failed upload of ``folder`` to ``repo_id``: the Hub unreachable (offline mode, no
    network), no or a bad token, a repo id the Hub refuses, no permission on the repo. ``None`` for an error that is
    not the Hub's (a bug, raised as it is)."""
    from huggingface_hub import errors

    later = f"The export is saved in {folder}; upload it later with `hf upload {repo_id} {folder} .`."
    detail = " ".join(str(err).split())[:200]
    if isinstance(err, errors.OfflineModeIsEnabled):
        return DeclutrRunError(f"Cannot upload to the Hugging Face Hub: offline mode is on (HF_HUB_OFFLINE=1). Unset "
                               f"HF_HUB_OFFLINE where the Hub is reachable, or set export.push_to_hub=false. {later}")
    if isinstance(err, errors.HFValidationError):
        return DeclutrConfigError(f"export.hub_model_id={repo_id!r} is not a valid Hub repo id ({detail}): use "
                                  "<user or org>/<name> with letters, digits, '-', '_' and '.' only.")
    if isinstance(err, errors.LocalTokenNotFoundError):
        return DeclutrConfigError(f"Cannot upload to the Hugging Face Hub: no token. Log in with `hf auth login` (or "
                                  f"set HF_TOKEN to a token with write access), then export again. {later}")
    if isinstance(err, errors.RepositoryNotFoundError):
        return DeclutrConfigError(f"The Hub repo {repo_id} does not exist or your token cannot see it: check "
                                  f"export.hub_model_id and that your token (`hf auth whoami`) belongs to its owner. "
                                  f"{later}")
    if isinstance(err, errors.HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None)
        reason = " ".join(str(getattr(err, "server_message", None) or detail).split())[:200]
        if status == 401:
            return DeclutrConfigError(f"The Hugging Face Hub refused the upload: no valid token (401: {reason}). Log "
                                      f"in with `hf auth login` or set HF_TOKEN to a token with write access. {later}")
        if status == 403:
            return DeclutrConfigError(f"The Hugging Face Hub refused the upload to {repo_id}: your token has no "
                                      f"write permission there (403: {reason}). Use a write token of the repo's "
                                      f"owner (`hf auth login`), or set export.hub_model_id to a repo of yours. "
                                      f"{later}")
        if status in (400, 409, 422):
            return DeclutrConfigError(f"The Hugging Face Hub refused export.hub_model_id={repo_id!r} ({status}: "
                                      f"{reason}): choose another <user or org>/<name>. {later}")
        return DeclutrRunError(f"The Hugging Face Hub failed the upload to {repo_id} ({status}: {reason}); try again "
                               f"later. {later}")
    if _network_error(err):
        return DeclutrRunError(f"Cannot reach the Hugging Face Hub ({type(err).__name__}: {detail}): check the network "
                               f"(or proxy, HF_ENDPOINT), or set export.push_to_hub=false. {later}")
    return None


def _network_error(err: Exception) -> bool:
    """A connection that failed or timed out: Python's own errors, or httpx's / requests' (which huggingface_hub
    uses) told by their class names, so that no HTTP library has to be imported."""
    if isinstance(err, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(err).__mro__}
    return bool(names & {"TransportError", "NetworkError", "TimeoutException", "ConnectError", "ConnectTimeout",
                         "ProxyError", "SSLError"}) or (
        "RequestException" in names and type(err).__module__.startswith("requests"))
