"""Local dashboards: a tiny run logging to TensorBoard and MLflow at once (``logger=[tensorboard,mlflow]``), read
back through the HTTP API of a real ``tensorboard`` and a real ``mlflow server``; ``task=eval`` to both; the settings
that cannot work fail before the model loads."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from declutr.errors import DeclutrConfigError
from declutr.tasks.eval import run as run_eval
from declutr.tasks.train import run as run_train
from tests.helpers.eval_data import write_tiny_model
from tests.helpers.runs import FAST, run_py

BIN = Path(sys.executable).parent
SERVER_START_S = 120
TRAIN_METRICS = {"train/loss", "train/lr", "spans/anchor_tokens_mean", "test/stsb_dev"}
# mlflow 3's server imports SQLAlchemy 2 names, while the sweeps extra pins SQLAlchemy<2 for optuna 2: aliasing the
# two names it needs is enough for it to serve a SQLite store (its own client, used in training, needs nothing).
SQLALCHEMY_2_NAMES = ("import sqlalchemy, sqlalchemy.engine, sqlalchemy.sql.expression\n"
                      "sqlalchemy.Engine = getattr(sqlalchemy, 'Engine', sqlalchemy.engine.Engine)\n"
                      "sqlalchemy.ColumnElement = getattr(sqlalchemy, 'ColumnElement', sqlalchemy.sql.expression.ColumnElement)\n")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A 4-step tiny run through run.py, logging to TensorBoard and MLflow (Hydra's list syntax for the group)."""
    folder = tmp_path_factory.mktemp("dashboards") / "run"
    result = run_py(*FAST, "debug=fast", "logger=[tensorboard,mlflow]", "callbacks.stsb_dev.every_n_steps=2",
                    "callbacks.span_log.batches=2", f"hydra.run.dir={folder}")
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, body: dict | None = None):
    """The JSON answer to a GET (or, with ``body``, a POST) of ``url``."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _poll(read, timeout: float = SERVER_START_S):
    """``read()``'s first answer that is truthy, retried until ``timeout`` seconds (a server starting, a log
    being loaded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = read()
            if answer:
                return answer
        except (urllib.error.URLError, ConnectionError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer within {timeout} s")
        time.sleep(1)


@contextmanager
def _server(command: list[str], log: Path, env: dict | None = None):
    """``command`` running in its own process group (mlflow starts workers), stopped with them on exit."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
                                   start_new_session=True)
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_tensorboard_serves_the_runs_scalars_histograms_and_span_texts(run_dir, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "tensorboard"), "--logdir", str(run_dir / "tensorboard"), "--port", str(port),
               "--host", "127.0.0.1"]
    with _server(command, tmp_path / "tensorboard.log"):
        tags = _poll(lambda: (t := _get(f"{url}/data/plugin/scalars/tags")) and TRAIN_METRICS <= set(next(iter(t.values()))) and t)
        (run,) = tags
        assert run.startswith("callbacks.span_log.batches=2,") and "logger" not in run, "named by the overrides"
        losses = _get(f"{url}/data/plugin/scalars/scalars?run={urllib.parse.quote(run)}&tag=train/loss")
        assert [step for _, step, _ in losses] == [0, 1, 2, 3] and all(value > 0 for _, _, value in losses)
        histograms = _get(f"{url}/data/plugin/histograms/tags")[run]
        assert {"spans/anchor_tokens", "spans/positive_tokens"} <= set(histograms)
        assert "spans/examples/text_summary" in _get(f"{url}/data/plugin/text/tags")[run]
    (hparams,) = run_dir.glob("tensorboard/*/hparams.yaml")
    assert "model:" in hparams.read_text() and "trainer:" in hparams.read_text(), "the resolved config"


@pytest.mark.slow
def test_mlflow_server_serves_the_runs_metrics_params_tags_and_span_table(run_dir, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SQLALCHEMY_2_NAMES)
    command = [str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{run_dir / 'mlflow.db'}",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    with _server(command, tmp_path / "mlflow.log", env={"PYTHONPATH": str(tmp_path / "site")}):
        experiments = _poll(lambda: _get(f"{url}/experiments/search", {"max_results": 10}).get("experiments"))
        experiment = next(e for e in experiments if e["name"] == "declutr")
        (found,) = _get(f"{url}/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
        history = _get(f"{url}/metrics/get-history?run_id={found['info']['run_id']}&metric_key=train/loss")["metrics"]
    assert found["info"]["status"] == "FINISHED"
    assert found["info"]["run_name"].startswith("callbacks.span_log.batches=2,") and "logger" not in found["info"]["run_name"]
    assert TRAIN_METRICS <= {metric["key"] for metric in found["data"]["metrics"]}
    assert [point["step"] for point in history] == [0, 1, 2, 3]
    params = {param["key"]: param["value"] for param in found["data"]["params"]}
    assert params["trainer/max_steps"] == "4" and params["model/encoder/name_or_path"], "the flattened config"
    assert "commit" in {tag["key"] for tag in found["data"]["tags"]}, "the tags of the run's context"
    (table,) = run_dir.glob("mlartifacts/*/artifacts/spans/examples.csv")
    assert table.read_text().startswith("step,document,anchor,")


@pytest.mark.slow
def test_eval_logs_its_scores_and_table_to_tensorboard_and_mlflow(make_config, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    cfg = make_config("task=eval", "eval=stsb", f"eval.model={model}", "eval.max_examples=50",
                      "logger=[tensorboard,mlflow]")
    run_eval(cfg)
    run_dir = Path(cfg.paths.output_dir)
    (events,) = run_dir.glob("tensorboard/*")
    accumulator = EventAccumulator(str(events), size_guidance={"tensors": 0}).Reload()
    assert {"eval/stsb_spearman", "eval/sts_avg"} <= set(accumulator.Tags()["scalars"])
    assert "eval/stsb/text_summary" in accumulator.Tags()["tensors"]
    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    (found,) = client.search_runs([client.get_experiment_by_name("declutr").experiment_id])
    assert {"eval/stsb_spearman", "eval/sts_avg"} <= set(found.data.metrics) and found.data.tags["eval"] == "stsb"
    assert found.info.status == "FINISHED"
    (table,) = run_dir.glob("mlartifacts/*/artifacts/eval/stsb.csv")
    assert table.read_text().startswith("task,metric,score\nSTSB dev,spearman,")


@pytest.mark.slow
def test_a_sweep_logs_into_one_tensorboard_folder_and_one_mlflow_store(tmp_path):
    """The documented sweep-level overrides: one sub-folder and one MLflow run per job, named apart by the seed."""
    result = run_py("-m", *FAST, "debug=fast", "evaluate.enabled=false", "logger=[tensorboard,mlflow]", "seed=1,2",
                    "logger.tensorboard.save_dir=${hydra:sweep.dir}/tensorboard",
                    "logger.mlflow.tracking_uri=sqlite:///${hydra:sweep.dir}/mlflow.db",
                    "logger.mlflow.artifact_location=${hydra:sweep.dir}/mlartifacts", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    folders = sorted(path.name for path in (tmp_path / "tensorboard").iterdir())
    assert [name.rsplit(",", 1)[1] for name in folders] == ["seed=1", "seed=2"]
    for folder in folders:
        accumulator = EventAccumulator(str(tmp_path / "tensorboard" / folder)).Reload()
        assert [event.step for event in accumulator.Scalars("train/loss")] == [0, 1, 2, 3]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("declutr").experiment_id])
    assert sorted(run.info.run_name.rsplit(",", 1)[1] for run in runs) == ["seed=1", "seed=2"]
    assert all(run.info.status == "FINISHED" and "train/loss" in run.data.metrics for run in runs)


@pytest.mark.parametrize(("overrides", "message"), [
    (["logger=mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9"],
     r"logger.mlflow.tracking_uri=http://127.0.0.1:9: no MLflow server answers there .*Start one"),
    (["logger=tensorboard", "logger.tensorboard.save_dir=/proc/x"],
     r"logger.tensorboard.save_dir: the folder /proc/x cannot be written .*Point logger.tensorboard.save_dir to a place"),
])
def test_unusable_logger_settings_fail_before_the_model_loads(make_config, monkeypatch, overrides, message):
    def not_reached(*args, **kwargs):
        raise AssertionError("the loggers were built: the run went on to write its folder and load the model")

    monkeypatch.setattr("declutr.tasks.train.write_hydra_files", not_reached)
    with pytest.raises(DeclutrConfigError, match=message):
        run_train(make_config(*FAST, "trainer.max_steps=1", "data.num_workers=0", *overrides))
