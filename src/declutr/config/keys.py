"""Keys that are not settings, answered with the nearest valid keys.

A node with a ``_target_`` (and a node the code passes on as keyword arguments, e.g. ``model.encoder``) may hold
only what its callable takes: :func:`unknown_keys` refuses the rest, so ``+data.sampler.num_anchor=4`` fails in
``validate`` naming ``data.sampler.num_anchors`` instead of as a ``TypeError`` at instantiation.
:func:`explain_failed_composition` does the same for a plain ``key=value`` that Hydra could not apply, after Hydra has
printed its own error.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra._internal.utils import get_args_parser  # the parser of @hydra.main itself: the same flags, the same way
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, OverrideParseException
from hydra.types import RunMode
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from declutr.config.primary import TASKS

HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})  # read by instantiate
# Nodes without a _target_ that the code passes on as keyword arguments, with the callable they are passed to:
# DeCLUTRModule calls load_masked_lm(**encoder).
PASSED_AS_KWARGS = {"model.encoder": "declutr.model.huggingface.load_masked_lm"}
# Nodes without a _target_ that the code reads key by key: what reads them, and their keys.
FIXED_KEYS = {"model.grad_cache": ("DeCLUTRModule's GradCache", frozenset({"chunk_size"}))}
# Settings that moved, old path -> new: the old path is answered with the new one.
MOVED = {"model.temperature": "model.loss.temperature"}
NEAREST = 3  # suggestions per unknown key, at most
AS_NEAR = 0.05  # a suggestion's similarity (difflib's ratio) may be this much below the best one's
_ABSENT = object()  # OmegaConf.select's default for a key the config does not have


def entries(node: DictConfig | ListConfig, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every ``(full key, value)`` under ``node``, containers included, depth first, list items as ``key[i]``.
    Interpolated values are left out (they are checked at their source), as are missing ones and Hydra's own
    node (``hydra``: its plugins' dataclasses check it)."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        if (not path and key == "hydra") or OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        full = f"{path}[{key}]" if isinstance(node, ListConfig) else f"{path}.{key}" if path else str(key)
        value = node[key]
        yield full, value
        if isinstance(value, DictConfig | ListConfig):
            yield from entries(value, full)


@cache
def parameters(target: str) -> frozenset[str] | None:
    """The keyword parameters of the callable ``target`` names, or ``None`` when it takes any keyword (``**kwargs``)
    or cannot be imported or inspected (building it reports that, naming the target)."""
    try:
        signature = inspect.signature(get_object(target))
    except Exception:  # noqa: BLE001 (any import or inspection failure: not this check's to report)
        return None
    kinds = [p.kind for p in signature.parameters.values()]
    if inspect.Parameter.VAR_KEYWORD in kinds:
        return None
    return frozenset(p.name for p in signature.parameters.values()
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def accepted(node: DictConfig, path: str) -> tuple[str, frozenset[str]] | None:
    """``(what receives the node, the keys it takes)``, or ``None`` when the node is free-form or takes anything."""
    if path in FIXED_KEYS:
        return FIXED_KEYS[path]
    target = PASSED_AS_KWARGS.get(path)
    if target is None:
        if "_target_" not in node or OmegaConf.is_interpolation(node, "_target_"):
            return None
        target = node["_target_"]
    names = parameters(target) if isinstance(target, str) else None
    return None if names is None else (target, names)


def unknown_keys(cfg: DictConfig) -> list[str]:
    """One line for each key of a node that what receives the node does not take, with the nearest valid keys."""
    found = []
    for path, node in [("", cfg), *entries(cfg)]:
        receiver = isinstance(node, DictConfig) and accepted(node, path)
        if not receiver:
            continue
        owner, names = receiver
        raw = OmegaConf.to_container(node)  # values as written: an interpolation is not resolved to be shown
        for key in node:
            if key not in names and key not in HYDRA_KEYS:
                near = _nearest(key, names, path)  # never a sibling the receiver does not take either
                fix = "use the key suggested, or remove it" if near else f"remove it; {owner} takes {_listed(names)}"
                found.append(f"{_not_a_setting(_join(path, key), near)} ({_join(path, key)}={raw[key]!r} would be "
                             f"passed to {owner}, which takes no {key}: {fix}).")
    return found


def explain_failed_composition(argv: list[str], config_dir: Path, config_name: str) -> list[str]:
    """After Hydra failed to compose ``run.py``'s config from ``argv``: one line for each ``key=value`` whose key
    the config does not have, with the nearest valid keys. Empty when the composition fails for another reason
    (Hydra's own message says it) or does not fail (the run failed later), or when ``argv`` names another config
    folder, which this does not mirror. A section that only other tasks' configs have is answered with those tasks."""
    args = get_args_parser().parse_args(argv)
    if args.config_path or args.config_dir:
        return []
    try:
        overrides = OverridesParser.create().parse_overrides(args.overrides)
    except OverrideParseException:  # Hydra has said where the override's syntax breaks
        return []
    GlobalHydra.instance().clear()  # Hydra's main left its own instance behind
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        composed = _compose_without_unknown(args.config_name or config_name, overrides)
        if composed is None:
            return []
        cfg, unknown = composed
        unknown += [o for o in overrides if o.is_sweep_override() and _is_plain(o) and _absent(cfg, o.key_or_group)]
        sections = {_section(o) for o in unknown} - set(cfg)
        elsewhere = {section: _tasks_with(section, cfg.task) for section in sections}
    return [_explain(cfg, o, elsewhere.get(_section(o), [])) for o in unknown]


def _section(override: Override) -> str:
    return override.key_or_group.split(".")[0]


def _tasks_with(section: str, task: str) -> list[str]:
    """The tasks other than ``task`` whose config (``conf/<task>.yaml``, composed as it stands) has ``section``."""
    found = []
    for other in TASKS:
        if other == task:
            continue
        try:
            cfg = GlobalHydra.instance().hydra.compose_config(other, [], run_mode=RunMode.RUN,
                                                              with_log_configuration=False)
        except (HydraException, OmegaConfBaseException):  # a task without its config: conf/ is refused at start-up
            continue
        if section in cfg:
            found.append(other)
    return found


def _compose_without_unknown(config_name: str,
                             overrides: list[Override]) -> tuple[DictConfig, list[Override]] | None:
    """The config composed as ``run.py -m`` composes it (sweeps are not applied), leaving out each override Hydra
    could not apply for want of its key; ``None`` if it fails for another reason."""
    kept, unknown = list(overrides), []
    while True:
        try:
            cfg = GlobalHydra.instance().hydra.compose_config(
                config_name, [o.input_line for o in kept], run_mode=RunMode.MULTIRUN, validate_sweep_overrides=False,
                with_log_configuration=False)
            return cfg, unknown
        except (HydraException, OmegaConfBaseException) as err:  # Hydra has said why; a missing key is ours to add
            culprit = next((o for o in kept if (start := _missing_key_error(o)) and str(err).startswith(start)), None)
            if culprit is None:
                return None
            kept.remove(culprit)
            unknown.append(culprit)


def _missing_key_error(override: Override) -> str | None:
    """How Hydra's error starts when the config lacks the key of ``override`` (``key=value`` or ``~key``); ``None``
    for an override that adds its key."""
    if override.is_delete():
        return f"Could not delete from config. '{override.key_or_group}' does not exist."
    return f"Could not override '{override.key_or_group}'." if _is_plain(override) else None


def _is_plain(override: Override) -> bool:
    """``key=value``: no ``+``/``++``/``~`` and no ``@package``, so a key the config must already have."""
    return not (override.is_add() or override.is_force_add() or override.is_delete() or override.package is not None)


def _absent(cfg: DictConfig, key: str) -> bool:
    """``key`` is neither a setting of ``cfg`` nor a config group (``model``, ``data/sampler``)."""
    return key not in cfg.hydra.runtime.choices and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT


def _explain(cfg: DictConfig, override: Override, elsewhere: list[str]) -> str:
    """The line for an override whose key ``cfg`` lacks: its first missing part, with the nearest keys there, or
    the tasks whose configs have its section (``elsewhere``)."""
    parts = override.key_or_group.split(".")
    node, depth = cfg, 0
    while depth < len(parts) - 1 and isinstance(node, DictConfig) and parts[depth] in node:
        node, depth = (None if OmegaConf.is_interpolation(node, parts[depth]) else node[parts[depth]]), depth + 1
    path, part, rest = ".".join(parts[:depth]), parts[depth], ".".join(parts[depth + 1:])
    if not isinstance(node, DictConfig):
        return (f"{override.key_or_group} is not a setting: {path} is a value, not a group of settings (from "
                f"{override.input_line})")
    receiver = accepted(node, path) if not rest else None
    if receiver and part in receiver[1] and not override.is_delete():  # conf/ just does not set it: "+" is right
        return (f"{override.key_or_group} is not in the config, but {receiver[0]} takes {part}: add it with "
                f"+{override.input_line}.")
    if elsewhere:
        return (f"{override.key_or_group} is not a setting of task={cfg.task}: {part} is a section of "
                f"{', '.join(f'task={task}' for task in elsewhere)} (from {override.input_line})")
    names = set(node.keys()) | (receiver[1] if receiver else set())
    near = [_join(n, rest) for n in _nearest(part, names, path)]
    return f"{_not_a_setting(override.key_or_group, near)} (from {override.input_line})"


def _nearest(key: str, names: set[str] | frozenset[str], path: str) -> list[str]:
    """The full keys under ``path`` closest to ``key`` among ``names``, best first: the best match and those
    nearly as close (``max_step``: ``max_steps``, not ``min_steps`` too); for a setting that moved, its new path."""
    if _join(path, key) in MOVED:
        return [MOVED[_join(path, key)]]
    candidates = sorted(set(names) - HYDRA_KEYS - {key})
    near = difflib.get_close_matches(key, candidates, n=NEAREST)
    score = [difflib.SequenceMatcher(None, key, n).ratio() for n in near]
    return [_join(path, n) for n, s in zip(near, score) if s >= score[0] - AS_NEAR]


def _not_a_setting(key: str, near: list[str]) -> str:
    if key in MOVED:
        return f"{key} is not a setting any more: it moved to {MOVED[key]}"
    return f"{key} is not a setting" + (f": did you mean {' or '.join(near)}?" if near else "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _listed(names: frozenset[str]) -> str:
    return ", ".join(sorted(names)) or "no settings"
