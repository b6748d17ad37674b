"""docs/fidelity.md's restore settings, each run end to end with exactly the overrides its table shows: read from the
doc (the code that starts a cell of its last column), so the doc and these runs cannot drift apart. Training settings
run a few steps of ``model=tiny`` on a real corpus, evaluation settings ``task=eval`` of a tiny encoder on the real
SentEval files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lightning as L
import pytest
from hydra.core.global_hydra import GlobalHydra

from declutr.tasks import eval as eval_task
from declutr.tasks import train as train_task
from tests.helpers.allennlp_schedule import allennlp_slanted_triangular_lrs
from tests.helpers.configs import compose_config
from tests.helpers.eval_data import write_tiny_model
from tests.helpers.paths import CORPUS, ROOT
from tests.helpers.runs import FAST, metrics

DOC = ROOT / "docs" / "fidelity.md"
STEPS = 20  # int(20 * 0.1) = 2 rising steps of the slanted triangle
OVERRIDE = re.compile(r"^[+~]?[A-Za-z_][\w.]*=\S+$")


def restore_settings() -> dict[str, list[str]]:
    """``{what: overrides}`` of every row of the doc's table whose last cell starts with code (its setting)."""
    settings = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| "):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if cells[-1].startswith("`"):
            settings[cells[0]] = re.match(r"`([^`]+)`", cells[-1]).group(1).split()
    return settings


class OptimizerProbe(L.Callback):
    """Writes to ``path`` the optimizer's class and, for each step, the settings of its parameter groups."""

    def __init__(self, path: str) -> None:
        self.path, self.steps, self.kind = Path(path), [], None

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:
        self.kind = type(optimizer).__name__
        self.steps.append([{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups])

    def on_train_end(self, trainer, module) -> None:
        self.path.write_text(json.dumps({"optimizer": self.kind, "steps": self.steps}, default=str))


def train(folder: Path, *overrides: str) -> dict:
    """``STEPS`` steps of the tiny model with ``overrides`` last: the optimizer probe, the losses, the documents."""
    probe = folder / "optimizer.json"
    cfg = compose_config([*FAST, "callbacks=none", "evaluate.enabled=false", f"trainer.max_steps={STEPS}",
                          "trainer.log_every_n_steps=1", "data.num_workers=0",
                          f"+callbacks.probe._target_={__name__}.OptimizerProbe", f"+callbacks.probe.path={probe}",
                          *overrides], folder / "run")
    try:
        train_task.run(cfg)
    finally:
        GlobalHydra.instance().clear()
    losses = [float(row["train/loss"]) for row in metrics(folder / "run") if row.get("train/loss")]
    documents = [line.split("\t")[2] for line in (folder / "run" / "documents.tsv").read_text().splitlines()]
    return {**json.loads(probe.read_text()), "losses": losses, "documents": documents}


def evaluate(folder: Path, model: Path, *overrides: str) -> dict:
    """``task=eval eval=transfer`` of ``model`` on 60 examples a task (2 folds, 2 C values), ``overrides`` last."""
    cfg = compose_config(["task=eval", "eval=transfer", f"eval.model={model}", "eval.max_examples=60",
                          "eval.protocol.kfold=2", "eval.protocol.c_values=[0.25,4]", f"eval.output_dir={folder}",
                          *overrides], folder / "run")
    try:
        eval_task.run(cfg)
    finally:
        GlobalHydra.instance().clear()
    return json.loads((folder / "eval-transfer-max60.json").read_text())


def lrs(run: dict) -> list[float]:
    return [groups[0]["lr"] for groups in run["steps"]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict:
    return train(tmp_path_factory.mktemp("baseline"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def baseline_eval(tmp_path_factory, tiny_model) -> dict:
    return evaluate(tmp_path_factory.mktemp("baseline_eval"), tiny_model)


def check_optimiser(tmp_path, overrides, request):
    run, baseline = train(tmp_path, *overrides), request.getfixturevalue("baseline")
    assert run["optimizer"] == "ReferenceAdamW" and baseline["optimizer"] == "AdamW"
    decay, no_decay = run["steps"][0]
    assert decay["correct_bias"] is False and decay["eps"] == 1e-6
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert run["losses"][0] == baseline["losses"][0]  # the same first batch and weights: only the updates differ
    assert run["losses"][1:] != baseline["losses"][1:]


def check_schedule_as_configured(tmp_path, overrides, request):
    run = train(tmp_path, *overrides)  # model=tiny's lr of 1e-3
    assert lrs(run) == pytest.approx(allennlp_slanted_triangular_lrs(1e-3, STEPS, num_steps_per_epoch=STEPS), rel=1e-12)


def check_schedule_as_run(tmp_path, overrides, request):
    run = train(tmp_path, *overrides)
    reference = allennlp_slanted_triangular_lrs(5e-5, STEPS, num_steps_per_epoch=None)  # the reference's lr and data
    assert lrs(run) == pytest.approx(reference, rel=1e-12) and lrs(run) == [1.5625e-6] * STEPS


def check_scale_fix(tmp_path, overrides, request):
    baseline = request.getfixturevalue("baseline")
    assert train(tmp_path, *overrides)["losses"] == baseline["losses"]  # one process: nothing changes


def check_document_order(tmp_path, overrides, request):
    # 2,000 reviews, where a 64-document buffer is not the whole corpus (it holds all of the addresses)
    corpus = f"data.files=[{CORPUS / 'nltk_movie_reviews' / 'movie_reviews'}]"
    documents = train(tmp_path / "restored", corpus, *overrides)["documents"]
    default = train(tmp_path / "default", corpus)["documents"]
    assert len(documents) == len(default) == STEPS * 4 and documents != default


def check_standardize(tmp_path, overrides, request):
    model, baseline_eval = request.getfixturevalue("tiny_model"), request.getfixturevalue("baseline_eval")
    scores = evaluate(tmp_path, model, *overrides)
    assert scores["protocol"]["standardize"] is False and baseline_eval["protocol"]["standardize"] is True
    assert scores["scores"] != baseline_eval["scores"]  # raw features: other classifiers


def check_warm_start(tmp_path, overrides, request):
    model, baseline_eval = request.getfixturevalue("tiny_model"), request.getfixturevalue("baseline_eval")
    scores = evaluate(tmp_path, model, *overrides)
    assert scores["protocol"]["warm_start"] is False and baseline_eval["protocol"]["warm_start"] is True
    assert [s["task"] for s in scores["scores"]] == [s["task"] for s in baseline_eval["scores"]]


def check_precision(tmp_path, overrides, request):
    assert evaluate(tmp_path, request.getfixturevalue("tiny_model"), *overrides)["precision"] == "float32"


CHECKS = {
    "optimiser": check_optimiser,
    "learning-rate schedule, as configured": check_schedule_as_configured,
    "learning-rate schedule, as run": check_schedule_as_run,
    "multi-GPU gradient scale": check_scale_fix,
    "document order": check_document_order,
    "transfer-task features": check_standardize,
    "transfer-task fits": check_warm_start,
    "evaluation precision": check_precision,
}


def test_every_restore_setting_of_the_doc_is_checked_here_and_is_a_list_of_overrides():
    settings = restore_settings()
    assert set(settings) == set(CHECKS), "a row of docs/fidelity.md gained or lost a setting: add or drop its check"
    for what, overrides in settings.items():
        assert overrides and all(OVERRIDE.match(o) for o in overrides), (what, overrides)


@pytest.mark.slow  # 8 short runs and 2 baselines
@pytest.mark.parametrize("what", list(CHECKS))
def test_the_doc_restore_setting_runs_as_written(what, tmp_path, request):
    CHECKS[what](tmp_path, restore_settings()[what], request)
