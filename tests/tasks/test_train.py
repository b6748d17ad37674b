"""task=train end to end: real corpus files, the real tokenizer, real Lightning runs through run.py."""

from pathlib import Path

import pytest
from transformers import AutoModel

from declutr.errors import DeclutrConfigError
from declutr.tasks.train import run
from tests.helpers.paths import STATE_UNION
from tests.helpers.runs import FAST, metrics, run_py
from tests.helpers.wandb_log import config_and_history_keys


@pytest.mark.slow
def test_fast_run_through_run_py_writes_model_checkpoints_and_metrics(tmp_path):
    result = run_py(*FAST, "debug=fast", "callbacks.stsb_dev.every_n_steps=2", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STS-B Spearman x100" in result.stdout and "Trained encoder" in result.stdout
    model = AutoModel.from_pretrained(tmp_path / "model")  # a plain HF folder
    assert model.config.hidden_size == 32
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    rows = metrics(tmp_path)
    logged = {key for row in rows for key, value in row.items() if value}
    assert {"train/loss", "train/contrastive_loss", "train/mlm_loss", "train/lr", "train/tokens_per_s",
            "val/stsb_spearman", "data/documents"} <= logged
    lrs = [float(r["train/lr"]) for r in rows if r.get("train/lr")]
    # 4 steps, int(0.1 * 4) = 0 warm-up steps, then linear decay from the tiny model's lr of 1e-3
    assert lrs == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])


@pytest.mark.slow
def test_wandb_offline_run_records_config_and_metrics(tmp_path):
    result = run_py(*FAST, "debug=fast", "logger=wandb", "callbacks.stsb_dev.every_n_steps=2", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    config, history = config_and_history_keys(run_file)
    assert {"data", "model", "trainer", "seed"} <= config  # the full resolved config
    assert {"train/loss", "train/contrastive_loss", "train/mlm_loss", "train/lr", "val/stsb_spearman"} <= history


@pytest.mark.slow
def test_multirun_sweeps_two_jobs(tmp_path):
    result = run_py("-m", *FAST, "debug=fast", "evaluate.enabled=false", "callbacks=none",
                    "data.sampler.strategy=overlap,subsumed", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if (p / "model" / "config.json").is_file()) == ["0", "1"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.files=[/nonexistent/corpus]"], "does not exist"),
        (["data.sampler.min_span_len=200", "data.sampler.max_span_len=100"], "min_span_len=200"),
        (["data.sampler.max_span_len=600"], "max_span_len=600 plus 2 special tokens exceeds the model's 512"),
        (["data.sampler.strategy=nearby"], "strategy='nearby'"),
        (["+evaluate.tasks.stsb_test.name=STSB dev"], "give each task its own name"),
        (["eval.stsb_dir=/nonexistent/stsb"], "Evaluation file.*sts-dev.csv"),
        (["+model.encoder.config_overrides.vocab_size=8192"], r"30,522 tokens, but the model's config has "
                                                               r"vocab_size=8,192.*config_overrides.vocab_size=30522"),
    ],
)
def test_bad_settings_fail_before_training_with_the_fix(make_config, overrides, message):
    cfg = make_config(*FAST, *overrides)
    with pytest.raises(DeclutrConfigError, match=message):
        run(cfg)
    assert not Path(cfg.paths.output_dir).exists(), "nothing is written for a config that cannot run"


def test_one_evaluation_path_every_stsb_setting_in_one_place(make_config):
    """task=eval eval=stsb evaluates the very task nodes task=train evaluates before and after training, and the
    periodic callback reads the same folder and batch size."""
    settings = ["eval.stsb_dir=/elsewhere", "eval.batch_size=7"]  # the same keys in both tasks' configs
    evaluation, training = make_config("task=eval", "eval=stsb", *settings), make_config(*settings)
    assert evaluation.eval.tasks.stsb_dev == training.evaluate.tasks.stsb_dev
    assert evaluation.eval.tasks.stsb == training.evaluate.tasks.stsb_test
    assert evaluation.eval.tasks.stsb_dev.directory == training.evaluate.tasks.stsb_dev.directory \
        == training.callbacks.stsb_dev.tasks.stsb.directory == "/elsewhere"
    assert evaluation.eval.batch_size == training.callbacks.stsb_dev.batch_size == 7


def test_corpus_without_usable_documents(make_config, tmp_path):
    corpus = tmp_path / "short"
    corpus.mkdir()
    (corpus / "a.txt").write_text("only a few words")
    (corpus / "b.txt").write_bytes(b"\xff\xfe\x00 not utf-8")
    (corpus / "c.jsonl").write_text('{"text": "short"}\n{broken\n')
    cfg = make_config(*FAST, f"data.files=[{corpus}]")
    with pytest.raises(DeclutrConfigError, match=r"No usable document.*2 too_short.*needs at least .* 512 tokens"):
        run(cfg)


@pytest.mark.slow
def test_run_py_turns_config_errors_into_a_clean_exit_leaving_nothing(tmp_path):
    result = run_py(*FAST, "data.files=[/nonexistent/corpus]", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert "Configuration error: Corpus path '/nonexistent/corpus' does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists(), "no run folder is left for a run that never started"


def test_training_reads_a_parquet_corpus(make_config, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted(STATE_UNION.glob("*.txt"))]
    pq.write_table(pa.table({"body": texts}), tmp_path / "union.parquet")
    cfg = make_config(*FAST, f"data.files=[{tmp_path / 'union.parquet'}]", "data.text_field=body", "callbacks=none",
                      "evaluate.enabled=false", "trainer.max_steps=3", "data.num_workers=0", "log_documents=false")
    result = run(cfg)
    assert result["steps"] == 3 and result["documents"] >= 3 * cfg.data.batch_size
