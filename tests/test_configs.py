"""Every config in conf/ composes, with the task whose primary config (conf/<task>.yaml) composes its group; each task's
config holds only what the task reads; and every option that can run here instantiates."""

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import MissingMandatoryValue, OmegaConf

from declutr.config.primary import TASKS
from declutr.config.schema import violations
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.errors import DeclutrConfigError
from declutr.model.module import DeCLUTRModule
from declutr.runs.context import run_axis
from declutr.tasks.train import run
from tests.helpers.configs import compose_hydra
from tests.helpers.paths import ROOT, STATE_UNION

GROUPS = {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in (ROOT / "conf").iterdir() if d.is_dir()}
GROUPS["data/sampler"] = sorted(p.stem for p in (ROOT / "conf" / "data" / "sampler").glob("*.yaml"))
GROUPS["model/loss"] = sorted(p.stem for p in (ROOT / "conf" / "model" / "loss").glob("*.yaml"))
# Experiments nest (ablation/<axis>, scale/<scale>, objective/<objective>): every file is an option.
GROUPS["experiment"] = sorted(p.relative_to(ROOT / "conf" / "experiment").with_suffix("").as_posix()
                              for p in (ROOT / "conf" / "experiment").rglob("*.yaml"))
ABLATIONS = sorted(p.stem for p in (ROOT / "conf" / "experiment" / "ablation").glob("*.yaml"))
# The neutral bases the options extend (model=default names no encoder; trainer=default no hardware).
BASES = {("model", "default"), ("trainer", "default")}
OPTIONS = [(group, option) for group, options in sorted(GROUPS.items()) for option in options
           if group != "hydra" and (group, option) not in BASES]
# The top-level sections of each task's config: what the task reads, nothing of the other tasks.
SHARED = {"task", "seed", "print_config", "paths"}  # conf/common.yaml
SECTIONS = {"train": SHARED | {"ckpt_path", "skip_finished", "log_documents", "report", "data", "model", "callbacks",
                               "logger", "trainer", "evaluate", "eval"},
            "eval": SHARED | {"logger", "evaluate", "eval"}, "embed": SHARED | {"embed"},
            "export": SHARED | {"export"}, "prepare": SHARED | {"model", "prepare"},
            "report": SHARED | {"sweep_dir", "report"}, "reproduce": SHARED | {"reproduce"},
            "tokenizer": SHARED | {"tokenizer"}}


def _groups_of(config_name: str) -> set[str]:
    """The config groups a primary config (or the shared config it lists) selects an option of."""
    groups = set()
    for entry in OmegaConf.load(ROOT / "conf" / f"{config_name}.yaml").get("defaults", []):
        if isinstance(entry, str):  # _self_, a shared config at the root (common), or a group's file at a package
            groups |= _groups_of(entry) if entry != "_self_" and "/" not in entry else set()
        else:
            groups |= set(entry)
    return groups


# The task each group's options compose with: train's where it has the group, else the first task that does.
TASK_OF = {group: next((task for task in ("train", *TASKS) if group.split("/")[0] in _groups_of(task)), None)
           for group in GROUPS}
TRAINING_OPTIONS = [option for option in OPTIONS if TASK_OF[option[0]] == "train"]
NEEDS_HUB = {("model", "distilroberta"), ("model", "roberta_base"),
             ("experiment", "declutr_small"), ("experiment", "declutr_base"), ("experiment", "scale/paper")}
NEEDS_GPU = {("trainer", "gpu"), ("trainer", "ddp"), ("trainer", "fsdp"), ("trainer", "multinode")}
# The MLM base that `python run.py experiment=mlm_base` makes (tests/tasks/test_mlm_base.py trains on one).
NEEDS_BASE = {("model", "bert_mini_mlm"), ("experiment", "scale/miniature")}
# The vocabulary that `python run.py task=tokenizer` makes (tests/tasks/test_tokenizer.py trains with one).
NEEDS_VOCABULARY = {("model", "bert_mini_corpus")}
# Gives no positives: a contrastive loss (every model option's default) is refused (tests/tasks/test_mlm_base.py).
MLM_ONLY = {("data/sampler", "windows")}


def test_every_group_is_some_task_s():
    assert None not in TASK_OF.values(), "a group no task composes"
    assert TASK_OF["eval"] == "eval" and TASK_OF["experiment"] == "train" and TASK_OF["data/sampler"] == "train"


@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes_only_what_it_reads_and_passes_the_checks(make_config, task):
    cfg = make_config(f"task={task}")
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["task"] == task and set(container) == SECTIONS[task]
    assert violations(cfg) == []  # the schema checks any task's config, with or without the training groups


def test_train_holds_of_eval_and_report_only_what_training_reads(make_config):
    """The evaluations before, during and after training read eval.batch_size and eval.stsb_dir; report.axis tags
    the run (task=report's own settings are in conf/report.yaml)."""
    cfg = make_config()
    assert set(cfg.eval) == {"batch_size", "stsb_dir"} and set(cfg.report) == {"axis"}
    assert make_config("task=eval").eval.batch_size == cfg.eval.batch_size  # one setting for both: conf/eval/common/shared.yaml


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_resolves(make_config, group, option):
    task = TASK_OF[group]
    cfg = make_config(f"task={task}", f"{group}={option}")
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["task"] == task
    assert set(container) <= SECTIONS[task], "an option adds a section its task does not read"


NEEDS_MADE = NEEDS_HUB | NEEDS_GPU | NEEDS_BASE | NEEDS_VOCABULARY  # what a clean clone cannot instantiate


@pytest.mark.parametrize("group, option", [o for o in TRAINING_OPTIONS if o not in NEEDS_MADE],
                         ids=[f"{g}={o}" for g, o in TRAINING_OPTIONS if (g, o) not in NEEDS_MADE])
def test_every_runnable_option_instantiates(make_config, tokenizer, group, option):
    overrides = [f"{group}={option}", f"data.files=[{STATE_UNION}]"]
    if group != "model" and option != "mlm_base":  # (experiment=mlm_base picks its own model)
        overrides.append("model=tiny")
    if (group, option) in MLM_ONLY:
        overrides.append("model.contrastive_weight=0")
    cfg = make_config(*overrides)
    assert isinstance(instantiate(cfg.data, tokenizer=tokenizer), DeCLUTRDataModule)
    assert isinstance(instantiate(cfg.model, tokenizer=tokenizer, _convert_="all"), DeCLUTRModule)
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values()]
    loggers = [instantiate(c) for c in (cfg.logger or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    assert trainer.max_steps == cfg.trainer.max_steps


def _parents(group: str, option: str) -> list[str]:
    """The options of the same group that ``option`` extends, nearest first, through its defaults lists."""
    chain = [entry for entry in OmegaConf.load(ROOT / "conf" / group / f"{option}.yaml").get("defaults", [])
             if isinstance(entry, str) and entry != "_self_"]
    return [parent for entry in chain for parent in (entry, *_parents(group, entry))]


@pytest.mark.parametrize("group, base", sorted(BASES))
def test_every_option_extends_its_group_s_neutral_base(group, base):
    for option in GROUPS[group]:
        if option != base:
            assert base in _parents(group, option), f"{group}/{option}.yaml does not extend {group}/{base}.yaml"


def test_model_default_asks_for_an_encoder(make_config):
    cfg = make_config("model=default")
    with pytest.raises(MissingMandatoryValue, match="model.encoder.name_or_path"):
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def test_paper_experiments_set_the_paper_settings(make_config):
    small = make_config("experiment=declutr_small")
    assert small.model.encoder.name_or_path == "distilroberta-base"
    assert (small.data.sampler.num_anchors, small.data.sampler.num_positives) == (2, 2)
    assert (small.data.sampler.min_span_len, small.data.sampler.max_span_len) == (32, 510)
    assert small.model.loss.temperature == 0.05 and small.model.optimizer.lr == 5e-5
    assert small.trainer.precision == "16-mixed"
    assert small.data.batch_size == 4 and small.trainer.max_steps == 124_467  # one epoch of 497,868 documents
    spread = make_config("experiment=declutr_small", "trainer=multinode", "trainer.devices=4", "trainer.num_nodes=2")
    assert spread.trainer.max_steps == 15_559  # still one epoch: 497,868 / (4 documents x 8 GPUs), rounded up
    base = make_config("experiment=declutr_base")
    assert base.model.encoder.name_or_path == "roberta-base" and base.data.sampler.max_span_len == 510


def test_gpu_and_ddp_trainers(make_config):
    assert make_config("trainer=gpu").trainer.accelerator == "gpu"
    ddp = make_config("trainer=ddp").trainer
    assert ddp.strategy == "ddp" and ddp.devices == 2


def test_every_yaml_key_is_commented():
    for path in (ROOT / "conf").rglob("*.yaml"):
        block = None  # the indentation of a block scalar's key (|-): its text lines are not keys
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if block is not None and (not stripped or indent > block):
                continue
            block = indent if stripped.split("#")[0].rstrip().endswith(("|-", "|")) else None
            if not stripped or stripped.startswith(("#", "-")) or stripped.endswith(":") or "_target_" in stripped \
                    or stripped.startswith("_partial_"):
                continue
            assert "#" in line, f"{path.relative_to(ROOT)}:{number} has no comment: {line!r}"


@pytest.mark.parametrize("axis", ABLATIONS)
def test_each_ablation_sweeps_its_axis_and_every_value_composes(make_config, axis):
    """``-m experiment=ablation/<axis>`` alone runs the axis: the config's sweeper params list its values, and a
    job with each of them composes and resolves (at the CPU reproduction scale, tagged with the axis)."""
    params = compose_hydra(f"experiment=ablation/{axis}").hydra.sweeper.params
    (key, values), = params.items()  # one axis per config
    assert compose_hydra(f"experiment=ablation/{axis}").hydra.mode == RunMode.MULTIRUN  # a sweep even without -m
    assert len(values.split(",")) >= 2
    for value in values.split(","):
        cfg = make_config(f"experiment=ablation/{axis}", f"{key}={value}")
        OmegaConf.to_container(cfg, resolve=True)
        assert run_axis(cfg, f"ablation/{axis}") == axis and cfg.trainer.max_steps > 0
        chosen = HydraConfig.get().runtime.choices.get(key) if "." not in key else str(OmegaConf.select(cfg, key))
        assert chosen == value


def test_scales_and_objectives_set_what_they_name(make_config):
    smoke, repro = make_config("experiment=scale/smoke"), make_config("experiment=ablation/anchors")
    assert smoke.model.encoder.random_init and smoke.trainer.max_steps < repro.trainer.max_steps
    assert repro.model.encoder.random_init is False and repro.data.sampler.num_anchors == 2  # MiniLM, paper's A
    assert not repro.callbacks.model_checkpoint.save_last and repro.callbacks.model_checkpoint.save_top_k == 0
    paper = make_config("experiment=ablation/anchors", "experiment/scale=paper")
    assert paper.model.encoder.name_or_path == "distilroberta-base" and paper.data.sampler.max_span_len == 510
    weights = {name: (cfg.model.contrastive_weight, cfg.model.mlm_weight) for name, cfg in
               ((o, make_config("experiment=ablation/objective", f"experiment/objective={o}"))
                for o in ("contrastive_mlm", "contrastive", "mlm"))}
    assert weights == {"contrastive_mlm": (1.0, 1.0), "contrastive": (1.0, 0.0), "mlm": (0.0, 1.0)}


def test_every_model_has_the_paper_s_loss_and_any_loss_goes_with_any_model_and_experiment(make_config):
    """model/default.yaml selects model/loss=ntxent for every model option; model/loss=<option> replaces it, under
    an experiment that picks its own model too, and model.loss.temperature sets the chosen loss's temperature."""
    for model in GROUPS["model"]:
        assert make_config(f"model={model}").model.loss == {"_target_": "declutr.model.losses.NTXentLoss",
                                                            "temperature": 0.05}, model
    for experiment in ("declutr_small", "declutr_base", "scale/smoke", "ablation/objective"):
        loss = make_config(f"experiment={experiment}", "model/loss=ntxent_one_way", "model.loss.temperature=0.1")
        assert loss.model.loss == {"_target_": "declutr.model.losses.OneWayNTXentLoss", "temperature": 0.1}, experiment


def test_optuna_search_maximises_stsb_dev_over_a_real_search_space(make_config):
    make_config("hparams_search=stsb_optuna")
    sweeper = HydraConfig.get().sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "maximize"
    assert HydraConfig.get().mode.name == "MULTIRUN"
    assert set(sweeper.params) == {"model.optimizer.lr", "model.loss.temperature", "data.sampler.num_anchors",
                                   "data.sampler.num_positives"}


def test_scale_settings_without_their_callbacks_name_the_conflict(make_config):
    cfg = make_config("experiment=scale/smoke", "callbacks=none", f"data.files=[{STATE_UNION}]")
    with pytest.raises(DeclutrConfigError, match=r"callbacks.stsb_dev has settings but no _target_.*callbacks=default"):
        run(cfg)
