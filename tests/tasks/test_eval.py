"""task=eval end to end: a tiny encoder saved as an HF folder, the real SentEval files, full-format STS/SICK fixtures."""

import json
from pathlib import Path

import pytest

from declutr.errors import DeclutrConfigError
from declutr.report.results import OK, RunResult, write_result
from declutr.tasks.eval import _output_dir, run
from tests.helpers.eval_data import write_sick_dir, write_sts_dir, write_tiny_model
from tests.helpers.paths import DATA_DIR
from tests.helpers.runs import run_py
from tests.helpers.wandb_log import finished_run_file, history_values, record_kinds, run_identity, run_tags

STS_TASKS = ["STS12", "STS13", "STS14", "STS15", "STS16", "STSB", "SICKR"]
TRANSFER_TASKS = ["MR", "CR", "SUBJ", "MPQA", "SST2", "TREC", "MRPC"]


@pytest.fixture
def eval_data(tmp_path):
    return [f"eval.sts_dir={write_sts_dir(tmp_path / 'STS')}", f"eval.sick_dir={write_sick_dir(tmp_path / 'SICK')}"]


def test_quick_suite_on_every_task_writes_table_json_and_csv_next_to_the_model(make_config, tmp_path, eval_data, capsys):
    model = write_tiny_model(tmp_path / "tiny")
    # quick's protocol with 2 folds and 2 C values, to keep the test short (the CV itself is tested in tests/eval)
    cfg = make_config("task=eval", "eval=quick", f"eval.model={model}", "eval.max_examples=60", *eval_data,
                      "eval.protocol.kfold=2", "eval.protocol.c_values=[0.25,4]")
    result = run(cfg)
    scores = json.loads((model / "eval-quick-max60.json").read_text())
    main = [s["task"] for s in scores["scores"] if s["main"]]
    assert main == STS_TASKS + TRANSFER_TASKS and scores["skipped"] == []
    assert scores["protocol"]["kfold"] == 2 and scores["protocol"]["c_values"] == [0.25, 4]
    assert scores["precision"] in ("float32", "bfloat16") and list(scores["task_seconds"]) == STS_TASKS + TRANSFER_TASKS
    assert scores["averages"]["sts"]["tasks"] == STS_TASKS and scores["averages"]["transfer"]["tasks"] == TRANSFER_TASKS
    assert {"mrpc_f1", "sts16_headlines_spearman", "stsb_spearman"} <= set(result["scores"])
    assert all(-100 <= v <= 100 for v in result["scores"].values())
    assert (model / "eval-quick-max60.csv").read_text().startswith("task,metric,score\nSTS12,spearman,")
    printed = capsys.readouterr().out
    assert "transfer avg" in printed and "mean accuracy of 7" in printed and str(model / "eval-quick-max60.json") in printed


@pytest.mark.slow
def test_run_py_eval_sts_skips_missing_sets_and_lists_them(tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    result = run_py("task=eval", "eval=sts", f"eval.model={model}", "eval.max_examples=50", f"paths.data_dir={DATA_DIR}",
                    f"eval.sts_dir={tmp_path / 'no-sts'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "STSB" in result.stdout and "STS avg covers STSB; not STS12, STS13, STS14, STS15, STS16, SICKR" in result.stdout
    assert "set eval.sts_dir to the folder holding STS12-en-test/" in result.stdout
    assert json.loads((model / "eval-sts-max50.json").read_text())["averages"]["sts"]["tasks"] == ["STSB"]


def test_eval_with_wandb_logs_its_table_and_scores_as_summary_keys(make_config, tmp_path):
    """Evaluating a trained run's model/ joins that run's W&B group, with its tags."""
    model = write_tiny_model(tmp_path / "run" / "model")
    write_result(tmp_path / "run", RunResult(status=OK, experiment="ablation/anchors", axis="anchors", scale="smoke",
                                             swept={"data.sampler.num_anchors": "4"}, git_commit="abc1234"))
    cfg = make_config("task=eval", "eval=stsb", f"eval.model={model}", "eval.max_examples=50", "logger=wandb")
    run(cfg)
    run_file = finished_run_file(Path(cfg.paths.output_dir))
    assert run_identity(run_file)["job_type"] == "eval" and run_identity(run_file)["group"] == "anchors@smoke"
    assert {"axis:anchors", "scale:smoke", "data.sampler.num_anchors=4", "eval:stsb"} <= run_tags(run_file)
    history = history_values(run_file)
    assert history["eval/stsb/_type"] == ["table-file"]
    summary = {item.key: json.loads(item.value_json) for record in record_kinds(run_file, "summary")
               for item in record.update}
    assert {"stsb_dev_spearman", "stsb_spearman", "sts_avg"} <= set(summary)


def test_unloadable_model_and_output_folder_choice(make_config, tmp_path):
    with pytest.raises(DeclutrConfigError, match="Cannot load 'no-such-org/no-such-model'"):
        run(make_config("task=eval", "eval=sts", "eval.model=no-such-org/no-such-model", "eval.max_examples=50"))
    cfg = make_config("task=eval", "eval.model=sentence-transformers/all-MiniLM-L6-v2")
    assert _output_dir(cfg.eval, "/runs/x").as_posix() == "/runs/x"  # a hub name: into the run folder
    checkpoint = tmp_path / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.touch()
    assert _output_dir(make_config("task=eval", f"eval.model={checkpoint}").eval, "/runs/x") == checkpoint.parent
    assert _output_dir(make_config("task=eval", "eval.output_dir=/elsewhere").eval, "/runs/x").as_posix() == "/elsewhere"


def test_eval_options_compose_the_documented_suites_and_protocols(make_config):
    tasks = {o: [t.get("name") or t._target_.rsplit(".", 1)[1] for t in make_config("task=eval", f"eval={o}").eval.tasks.values()]
             for o in ("sts", "transfer", "all", "quick")}
    assert tasks["sts"] == ["STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness"]
    assert tasks["transfer"] == ["MR", "CR", "SUBJ", "MPQA", "SST", "TREC", "MRPC"]
    assert tasks["all"] == tasks["quick"] == tasks["sts"] + tasks["transfer"]
    full, quick = (make_config("task=eval", f"eval={o}").eval.protocol for o in ("all", "quick"))
    assert (full.kfold, list(full.c_values), full.seed) == (10, [0.25, 0.5, 1, 2, 4, 8], 1111)
    assert (quick.kfold, list(quick.c_values)) == (5, [0.25, 1, 4])


def test_baselines_of_a_model_are_scored_and_filed_apart_from_it(make_config, tmp_path):
    model = write_tiny_model(tmp_path / "tiny")
    scores = {}
    for variant, overrides in {"": [], "-random_init": ["eval.random_init=true"],
                               "-word_embeddings": ["eval.representation=word_embeddings"]}.items():
        result = run(make_config("task=eval", "eval=stsb", f"eval.model={model}", "eval.max_examples=200", *overrides))
        path = Path(result["json"])
        assert path.name == f"eval-stsb-max200{variant}.json"
        assert path.parent == (model if not variant else tmp_path / "run"), "a baseline never poses as the model"
        payload = json.loads(path.read_text())
        assert [s["key"] for s in payload["scores"]] == ["stsb_dev_spearman", "stsb_spearman"]
        scores[variant] = payload["scores"][1]["score"]
    assert len(set(scores.values())) == 3, scores  # three different representations
    again = run(make_config("task=eval", "eval=stsb", f"eval.model={model}", "eval.max_examples=200",
                            "eval.random_init=true", "eval.output_dir=" + str(tmp_path / "again")))
    assert json.loads(Path(again["json"]).read_text())["scores"][1]["score"] == scores["-random_init"]  # seeded
