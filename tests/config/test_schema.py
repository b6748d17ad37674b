"""The config schema: every out-of-range value of every setting (infinite and NaN included) is refused naming its own
key, so is an infinite or NaN number anywhere else, all violations are reported together, the rules between settings
hold, and every numeric setting in conf/ has a schema entry.

The out-of-range cases are generated from the schema itself (hypothesis), so a setting added to it later is covered
without a new test. They are checked in-process through ``validate``, the function ``run.py`` calls; a few
end-to-end ``run.py`` cases check the exit status, the message, no traceback and no run folder.
"""

import logging
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf, open_dict

from declutr.config.keys import entries
from declutr.config.primary import TASKS
from declutr.config.schema import SCHEMA, Setting, check_arguments, log_cautions, validate, violations
from declutr.errors import DeclutrConfigError
from tests.helpers.configs import compose_hydra, config_holding
from tests.helpers.paths import ROOT
from tests.helpers.runs import FAST, run_py

CONF = ROOT / "conf"
# Every option of every group (the neutral model/trainer bases and Hydra's own groups aside).
OPTIONS = [(f"{path.parent.relative_to(CONF).as_posix()}={path.stem}",) for path in sorted(CONF.rglob("*.yaml"))
           if path.parent != CONF and path.parts[len(CONF.parts)] not in ("hydra", "experiment")
           and path.parent.name != "common" and path.stem != "default"]
OPTIONS += [(f"experiment={path.relative_to(CONF / 'experiment').with_suffix('').as_posix()}",)
            for path in sorted((CONF / "experiment").rglob("*.yaml"))]


def bad_values(setting: Setting, good_item=None) -> st.SearchStrategy:
    """Values the setting must refuse: out of its range or choices, infinite or NaN, of the wrong type, or null when
    not allowed; for a list setting, lists holding one such item among ``good_item``s, and lists of a wrong length."""
    items = bad_items(setting)
    if setting.each:
        size = setting.length or 2
        lists = items.map(lambda bad: [good_item] * (size - 1) + [bad])
        wrong_lengths = [st.just([]), st.just([good_item] * (size + 1))] if setting.length else [st.just([])]
        return st.one_of(lists, *wrong_lengths, st.just(good_item), *([] if setting.nullable else [st.none()]))
    return st.one_of(items, st.just([1, 2]), *([] if setting.nullable else [st.none()]))


def bad_items(setting: Setting) -> st.SearchStrategy:
    """Single values the setting refuses (as itself, or as an item of its list)."""
    wrong = [st.text(min_size=1, max_size=8).filter(lambda s: s not in setting.choices)]
    if setting.kind == "choice":
        return st.one_of(*wrong, st.integers(-5, 5))
    wrong.append(st.sampled_from([math.inf, -math.inf, math.nan]))
    if setting.low is not None:
        below = setting.low if setting.low_open else setting.low - 1e-9 if setting.kind == "float" else setting.low - 1
        wrong.append(st.floats(max_value=below, allow_nan=False, allow_infinity=False) if setting.kind == "float"
                     else st.integers(max_value=int(below)))
    if setting.high is not None:
        above = setting.high if setting.high_open else setting.high + (1e-9 if setting.kind == "float" else 1)
        wrong.append(st.floats(min_value=above, allow_nan=False, allow_infinity=False) if setting.kind == "float"
                     else st.integers(min_value=int(above)))
    if setting.kind == "int":
        wrong.append(st.just(1.5))
    return st.one_of(*wrong)


@pytest.mark.parametrize("setting", SCHEMA, ids=[s.key for s in SCHEMA])
def test_every_setting_is_in_its_config_and_its_shipped_value_is_allowed(setting):
    cfg = config_holding(setting.key)
    assert OmegaConf.select(cfg, setting.key, default="absent") != "absent", f"{setting.key} is not in conf/"
    assert setting.problem(OmegaConf.select(cfg, setting.key)) is None


@pytest.mark.parametrize("setting", SCHEMA, ids=[s.key for s in SCHEMA])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_out_of_range_value_is_refused_naming_its_own_key(setting, data):
    cfg = config_holding(setting.key)
    value = data.draw(bad_values(setting, OmegaConf.select(cfg, setting.key)[0] if setting.each else None))
    OmegaConf.update(cfg, setting.key, value, force_add=True)
    with pytest.raises(DeclutrConfigError) as error:
        validate(cfg)
    lines = [line for line in str(error.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 1 and lines[0].startswith(f"  - {setting.key}={value!r}: "), lines
    assert "allowed: " in lines[0]


@pytest.mark.parametrize("override, key", [
    ("+model.encoder.config_overrides.layer_norm_eps=inf", "model.encoder.config_overrides.layer_norm_eps"),
    ("+model.encoder.config_overrides.scales=[1.0,nan]", "model.encoder.config_overrides.scales[1]"),
    ("+reproduce.extra.rate=-inf", "reproduce.extra.rate"),
])
def test_an_infinite_or_nan_number_outside_the_settings_is_refused(override, key):
    """Numbers without a schema entry (free-form keys, a key added with +) are refused when infinite or NaN too."""
    found = violations(compose_hydra(override))
    assert len(found) == 1 and found[0].startswith(f"{key}="), found
    assert "not a finite number" in found[0] and "set it to a finite value" in found[0]


def test_every_violation_is_reported_together():
    cfg = compose_hydra("model.loss.temperature=-0.05", "data.batch_size=0", "data.mlm_probability=1.5")
    found = violations(cfg)
    assert [line.split("=")[0] for line in found] == ["data.batch_size", "data.mlm_probability",
                                                      "model.loss.temperature"]


@pytest.mark.parametrize("overrides, message", [
    (["data.sampler.min_span_len=200", "data.sampler.max_span_len=100"], "min_span_len=200 is above"),
    (["model.contrastive_weight=0", "model.mlm_weight=0"], "leave nothing to train"),
    (["model.grad_cache.chunk_size=8", "model.chunk_size=4"], "model.chunk_size would be ignored"),
    (["logger=wandb", "logger.wandb.log_model=true"], "uploads models only online"),
    (["trainer.max_steps=0"], "trains nothing"),
    (["trainer.max_steps=-1"], "leaves the run unbounded"),
    (["seed=null"], r"data.seed=null \(it follows seed=null\)"),
    (["data.batch_size=1", "data.sampler.num_anchors=1"], "its one anchor .* has no negative: the contrastive loss "
                                                          "is exactly 0"),
    (["data.batch_size=1"], "all 2 negatives of each anchor .* come from its own document"),
    # neither adds documents to the NT-Xent: accumulation computes it per micro-batch, GradCache per batch
    (["data.batch_size=1", "trainer.accumulate_grad_batches=8"], "puts one document in each step"),
    (["data.batch_size=1", "model.grad_cache.chunk_size=1", "model.chunk_size=auto"], "puts one document"),
])
def test_rules_between_settings(overrides, message):
    with pytest.raises(DeclutrConfigError, match=message):
        validate(compose_hydra(*overrides))


@pytest.mark.parametrize("values", [
    {"eval.protocol.kfold": 1, "eval.protocol.n_jobs": 0},  # two ranges
    {"eval.protocol.c_values": [1.0, math.inf]},  # an item of a list
    {"data.sampler.min_span_len": 40, "data.sampler.max_span_len": 30},  # a rule between settings
    {"model.contrastive_weight": 0, "model.mlm_weight": 0},
])
def test_arguments_of_a_class_built_in_python_are_refused_as_run_py_refuses_the_settings(values):
    cfg = config_holding(next(iter(values)))
    for key, value in values.items():
        OmegaConf.update(cfg, key, value)
    with pytest.raises(DeclutrConfigError) as from_config:
        validate(cfg)
    with pytest.raises(DeclutrConfigError) as from_python:
        check_arguments(values)
    assert str(from_python.value) == str(from_config.value)


def test_arguments_within_the_schema_pass():
    check_arguments({"eval.protocol.kfold": 2, "eval.protocol.c_values": (0.5, 2), "eval.protocol.n_jobs": None,
                     "data.sampler.min_span_len": 30, "data.sampler.max_span_len": 30})


@pytest.mark.parametrize("overrides, negatives", [
    (["data.batch_size=2"], 4),  # 2 x (2 - 1) x 2: the anchors and mean positives of the other document
    (["data.batch_size=1", "trainer=ddp_cpu"], 4),  # documents are counted over every process
    (["data.batch_size=4", "data.sampler.num_anchors=1"], 6),
    (["data.batch_size=4"], None),  # the default: 12
    (["data.batch_size=1", "model.contrastive_weight=0"], None),  # no contrastive loss
    (["data.batch_size=1", "data/sampler=windows", "model.contrastive_weight=0"], None),  # no anchors
])
def test_a_batch_with_few_negatives_from_other_documents_is_a_warning(caplog, overrides, negatives):
    cfg = compose_hydra(*overrides)
    validate(cfg)
    with caplog.at_level(logging.WARNING, logger="declutr.config.schema"):
        log_cautions(cfg)
    if negatives is None:
        assert not caplog.records
    else:
        assert len(caplog.records) == 1
        assert f"each anchor has {negatives} negatives from other documents" in caplog.records[0].getMessage()


# Numeric leaves that need no schema entry, each with the reason.
FREE = {"model.encoder.config_overrides": "the Hugging Face config's own keys, which differ by architecture; "
                                          "transformers checks them when the config is built, before the weights load"}


def test_every_shipped_option_passes_and_every_numeric_setting_has_a_schema_entry():
    """Every option of every group is valid as shipped, and a numeric setting (or list item) added to conf/ without a
    schema entry fails here. Interpolations are left out: their source is checked; so is Hydra's own node."""
    covered = {setting.key for setting in SCHEMA}
    missing = set()
    for overrides in [(), *((f"task={task}",) for task in TASKS), *OPTIONS]:
        group = overrides[0].split("=")[0].split("/")[0] if overrides else None
        cfg = compose_hydra(*((f"task={group}",) if group in TASKS else ()), *overrides)  # eval=quick: task=eval's
        with open_dict(cfg):
            del cfg["hydra"]
        assert violations(cfg) == [], overrides
        for key, value in entries(cfg):
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            free = any(key.startswith(f"{f}.") or key == f for f in FREE)
            if numeric and re.sub(r"\[\d+\]$", "", key) not in covered and not free:
                missing.add(key)
    assert not missing, f"settings without a schema entry: {sorted(missing)}"


@pytest.mark.slow
@pytest.mark.parametrize("task, overrides", [
    ("train", ["model.loss.temperature=-0.05", "data.batch_size=0"]),
    ("eval", ["eval.batch_size=0"]),
    ("prepare", ["prepare.shard_size=-3"]),
])
def test_run_py_refuses_out_of_range_settings_cleanly(tmp_path, task, overrides):
    fast = FAST if task == "train" else [o for o in FAST if o.startswith("paths.")]  # each task's config has its keys
    result = run_py(*fast, f"task={task}", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Configuration error" in result.stderr and all(o.split("=")[0] in result.stderr for o in overrides)
    assert not (tmp_path / "run").exists(), "nothing is written for a config that cannot run"
