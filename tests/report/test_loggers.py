"""The backends' extras without a training run: names, the checks made before a run, tables as Markdown."""

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from omegaconf import OmegaConf

from declutr.errors import DeclutrConfigError
from declutr.report.loggers import _folder_name, _markdown, check_loggers, defaults, note_logger_change, run_name


def test_names_prefer_the_swept_values_and_fit_one_folder(make_config):
    cfg = make_config("logger=[tensorboard,mlflow]")
    assert run_name(cfg, {"swept": {"data.sampler.num_anchors": "4", "seed": "2"}}) == "data.sampler.num_anchors=4,seed=2"
    assert _folder_name("data.files=[/corpus/a.txt],seed=1") == "data.files=[_corpus_a.txt],seed=1"
    assert _folder_name("x" * 256) is None and _folder_name(None) is None
    context = {"swept": {"seed": "1"}, "axis": "anchors", "scale": "smoke"}
    assert defaults(cfg, cfg.logger.tensorboard, context) == {"version": "seed=1"}
    assert defaults(cfg, cfg.logger.mlflow, context) == {"experiment_name": "anchors@smoke", "run_name": "seed=1"}
    named = make_config("logger=mlflow", "logger.mlflow.experiment_name=mine")
    assert defaults(named, named.logger.mlflow, {})["run_name"] == "run", "no name: the run folder's"
    assert "experiment_name" not in defaults(named, named.logger.mlflow, {})


def test_markdown_table_keeps_a_bar_inside_its_cell():
    assert _markdown(["a", "b"], [["x|y", 1]]).splitlines() == ["| a | b |", "| --- | --- |", "| x\\|y | 1 |"]


def test_a_store_that_cannot_be_written_is_named(make_config):
    with pytest.raises(DeclutrConfigError, match=r"logger.mlflow.tracking_uri: the folder /proc/x cannot be written"):
        check_loggers(make_config("logger=mlflow", "logger.mlflow.tracking_uri=sqlite:////proc/x/mlflow.db"))
    with pytest.raises(DeclutrConfigError, match=r"logger.mlflow.artifact_location: the folder /proc/x cannot be written"):
        check_loggers(make_config("logger=mlflow", "logger.mlflow.artifact_location=/proc/x"))


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_a_server_that_answers_even_with_an_error_status_passes(make_config):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        check_loggers(make_config("logger=mlflow", f"logger.mlflow.tracking_uri=http://127.0.0.1:{server.server_port}"))
    finally:
        server.shutdown()
        server.server_close()


def test_a_resume_with_other_loggers_says_what_changed(make_config, tmp_path, caplog):
    first = tmp_path / "first"
    (first / ".hydra").mkdir(parents=True)
    OmegaConf.save(make_config("logger=csv"), first / ".hydra" / "config.yaml")
    resumed = make_config("logger=[csv,tensorboard]", f"ckpt_path={first}/checkpoints/last.ckpt")
    with caplog.at_level(logging.WARNING, logger="declutr.report.loggers"):
        note_logger_change(resumed)
        note_logger_change(make_config("logger=csv", f"ckpt_path={first}/checkpoints/last.ckpt"))  # the same: silent
    (record,) = caplog.records
    assert record.getMessage() == (f"Resuming {first.resolve()} with other loggers: it logged to csv, this run logs to "
                                   "csv, tensorboard. The checkpoint resumes as usual; the metrics logged before stay "
                                   "in the earlier loggers' stores.")
