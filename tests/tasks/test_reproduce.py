"""task=reproduce: the plan of jobs (what waits for what), the runner (skips what finished, never starts what
depends on a failure, records wall times) and the chosen learning rate."""

import json
import shutil

import pytest

from declutr.errors import DeclutrConfigError, DeclutrRunError
from declutr.report.reproduction import Layout
from declutr.report.results import OK, RunResult, read_result, write_result
from declutr.tasks.reproduce import Job, JobRunner, chosen_lr, plan, run, sweep_size
from tests.helpers.paths import DATA_DIR, STATE_UNION
from tests.helpers.runs import run_py
from tests.helpers.sweeps import add_job


def test_plan_orders_and_links_every_stage(make_config, tmp_path):
    cfg = make_config("task=reproduce", f"reproduce.output_dir={tmp_path}", "reproduce.seeds=[1,2]",
                      "reproduce.axes=[objective,anchors]", "reproduce.overrides=['trainer=gpu']",
                      "reproduce.learning_rates=[3e-5,1e-4,3e-4]")
    layout = Layout(tmp_path)
    jobs = {job.name: job for job in plan(cfg.reproduce, layout, {"objective": 3, "anchors": 3})}
    assert jobs["base"].args()[:2] == ["experiment=mlm_base", "trainer=gpu"] and jobs["base"].after == ()
    assert [name for name in jobs if name.startswith("lr-")] == ["lr-3e-05", "lr-0.0001", "lr-0.0003"]
    assert "trainer.max_steps=300" in jobs["lr-0.0001"].args  # reproduce.lr_steps: a short probe
    full_length = plan(make_config("task=reproduce", "reproduce.lr_steps=null").reproduce, layout, {"objective": 3})
    assert not any(arg.startswith("trainer.max_steps") for job in full_length if job.stage == "lr" for arg in job.args)
    assert jobs["objective-seed2"].after == ("base", "lr-3e-05", "lr-0.0001", "lr-0.0003")
    assert [jobs[f"transfer-objective-seed1-{k}"].after for k in range(3)] == [("objective-seed1",)] * 3
    assert not any(name.startswith("transfer-anchors") for name in jobs)  # transfer_axes: objective only
    assert jobs["baseline-minilm-quick"].args[:4] == ["task=eval", "eval=quick",
                                                      f"eval.output_dir={layout.baseline('minilm')}",
                                                      "eval.model=${minilm_path:}"]
    assert jobs["baseline-random_init-stsb"].after == ("base",)
    no_transfer = plan(make_config("task=reproduce", "reproduce.transfer_axes=[]").reproduce, layout, {"objective": 3})
    assert not any(job.name.endswith("-quick") or job.stage == "transfer" for job in no_transfer)
    assert set(jobs["report-objective"].after) == {"objective-seed1", "objective-seed2",
                                                    *(f"transfer-objective-seed{s}-{k}" for s in (1, 2) for k in range(3))}
    # the axes take the learning rate the lr stage chose, once it has run
    for lr, dev in ((1e-4, 57.0), (3e-4, 52.0)):
        write_result(layout.lr_run(lr), RunResult(status=OK, after={"stsb_dev": dev}))
    args = jobs["anchors-seed1"].args()
    assert args[:4] == ["-m", "experiment=ablation/anchors", "experiment/scale=miniature", "seed=1"]
    assert "model.optimizer.lr=0.0001" in args and args[-1] == f"hydra.sweep.dir={layout.axis('anchors') / 'seed1'}"
    assert "skip_finished=true" in args  # a sweep stopped partway keeps its finished runs
    assert chosen_lr(layout, [3e-5, 1e-4, 3e-4]) == 1e-4  # (3e-5 never ran) and chosen_lr(Layout(tmp_path / "none"), [1e-4]) is None
    assert (sweep_size("objective"), sweep_size("span_length")) == (3, 3)


@pytest.mark.slow  # run.py in subprocesses (task=report twice, a failing task): 41 s under load
def test_runner_skips_finished_jobs_and_never_starts_what_needs_a_failed_one(tmp_path, capsys):
    layout = Layout(tmp_path / "out")
    sweep = tmp_path / "sweep"
    add_job(sweep, "0", ["data.sampler.strategy=overlap"], after={"stsb_dev": 50.0})
    report = ["task=report", f"sweep_dir={sweep}", f"report.output_dir={tmp_path / 'report'}"]
    jobs = [Job("good", "reports", report), Job("bad", "reports", ["task=no_such_task"]),
            Job("after-bad", "reports", report, ("bad",)), Job("after-good", "reports", report, ("good",))]
    with pytest.raises(DeclutrRunError, match="2 job\\(s\\) failed or were not started: after-bad, bad"):
        JobRunner(layout, parallel=2).run_all(jobs)
    record = json.loads(layout.job_record("after-good").read_text())
    assert record["stage"] == "reports" and record["ended"] >= record["started"] and record["seconds"] > 0
    assert "python run.py task=report" in record["command"] and (tmp_path / "report" / "report.md").is_file()
    assert not layout.job_record("after-bad").exists() and "task='no_such_task' is not a task" in (layout.logs / "bad.log").read_text()
    assert "skip after-bad: a job it needs failed" in capsys.readouterr().out
    JobRunner(layout, parallel=1).run_all(jobs[:1] + jobs[3:])  # a rerun: both finished before
    assert "2 job(s) finished before: skipped." in capsys.readouterr().out


def test_bad_settings_are_refused_before_any_job(make_config, tmp_path):
    for override, message in (("reproduce.stages=[base,train]", "unknown \\['train'\\]"),
                              ("reproduce.axes=[nothing]", "no experiment=ablation/nothing")):
        with pytest.raises(DeclutrConfigError, match=message):
            run(make_config("task=reproduce", f"reproduce.output_dir={tmp_path}", override))
    assert not (tmp_path / "jobs").exists()


def test_the_second_design_makes_its_vocabulary_first_and_reuses_a_base_trained_by_hand(make_config, tmp_path):
    base_dir = tmp_path / "base"
    cfg = make_config("task=reproduce", "reproduce=corpus_vocabulary", f"reproduce.output_dir={tmp_path / 'out'}",
                      f"reproduce.base.dir={base_dir}", "reproduce.axes=[objective]", "reproduce.seeds=[1]")
    layout = Layout(tmp_path / "out", cfg.reproduce.base.dir)
    jobs = {job.name: job for job in plan(cfg.reproduce, layout, {"objective": 3})}
    assert jobs["base-setup-0"].args == ["task=tokenizer"] and jobs["base-setup-0"].after == ()
    assert jobs["base-setup-1"].args[:2] == ["task=prepare", "model=bert_mini_corpus"]
    assert jobs["base-setup-1"].after == ("base-setup-0",) and jobs["base"].after == ("base-setup-1",)
    base_args = jobs["base"].args()
    assert base_args[0] == "experiment=mlm_base_corpus" and f"hydra.run.dir={base_dir}" in base_args
    # reproduce.base.overrides reach the DeCLUTR runs only: the base keeps its own corpus setting and no dropout
    assert not any("dropout" in arg or arg.startswith("data.files") or arg.startswith("ckpt_path") for arg in base_args)
    (base_dir / "checkpoints").mkdir(parents=True)  # a base stopped partway (by hand or by an earlier call) resumes
    (base_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert jobs["base"].args()[-1] == f"ckpt_path={base_dir / 'checkpoints' / 'last.ckpt'}"
    lr_args = jobs["lr-0.0003"].args
    assert any(arg.startswith("data.files=[") and arg.endswith("corpus_wordpiece_8192]") for arg in lr_args)
    assert f"paths.mlm_base_dir={base_dir}" in lr_args
    assert "+model.encoder.config_overrides.hidden_dropout_prob=0.1" in jobs["objective-seed1"].args()
    # a base that python run.py experiment=mlm_base_corpus finished (ok, with its model) is not trained again
    assert not jobs["base"].finished_before(layout)
    write_result(base_dir, RunResult(status=OK))
    assert not jobs["base"].finished_before(layout)  # no model/ in it
    (base_dir / "model").mkdir()
    assert jobs["base"].finished_before(layout) and not jobs["base-setup-0"].finished_before(layout)


@pytest.mark.slow  # a dozen run.py processes: vocabulary, corpus, base, baselines, lr probe, an axis, report, doc
def test_the_one_call_gpu_reproduction_runs_end_to_end_on_a_cpu_at_a_tiny_size(prepared_corpus, tmp_path, monkeypatch):
    """reproduce=gpu's CPU path: every stage of the GPU call, with 2-step runs on the State of the Union addresses."""
    data, cache, out = tmp_path / "data", tmp_path / "cache", tmp_path / "out"
    shutil.copytree(STATE_UNION, data / "corpus" / "state_union")  # what the setup's task=prepare reads
    (data / "eval").symlink_to(DATA_DIR / "eval")  # STS-B
    shutil.copytree(prepared_corpus, cache / "corpus")  # what task=tokenizer learns the vocabulary from
    monkeypatch.setenv("DECLUTR_DATA_DIR", str(data))
    monkeypatch.setenv("DECLUTR_CACHE_DIR", str(cache))
    tiny = ["'trainer.accelerator=cpu'", "'trainer.precision=32-true'", "'trainer.max_steps=2'", "'data.batch_size=2'",
            "'trainer.log_every_n_steps=1'"]
    done = run_py("task=reproduce", "reproduce=gpu", f"reproduce.output_dir={out}", f"reproduce.doc={tmp_path / 'doc.md'}",
                  f"reproduce.overrides=[{','.join(tiny)}]", "reproduce.parallel=2", "reproduce.seeds=[1]",
                  "reproduce.axes=[objective]", "reproduce.transfer_axes=[]", "reproduce.learning_rates=[1e-3]",
                  "reproduce.lr_steps=2", "reproduce.baselines=[mlm_base,word_embeddings]",
                  "reproduce.eval_overrides=['eval.max_examples=50']")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    base = cache / "mlm_base_corpus_large"
    assert (base / "model" / "config.json").is_file() and read_result(base).steps == 2
    assert json.loads((base / "model" / "config.json").read_text())["num_hidden_layers"] == 6  # the larger base
    text = (tmp_path / "doc.md").read_text()
    assert "`python run.py experiment=mlm_base_corpus_large`: MiniLM's shape" in text and "unigram entropy" in text
    objective = text[text.index("## Objective"):text.index("## Wall time")]
    assert "| contrastive + MLM (the paper's) — after 2 steps | 1 |" in objective
    assert "| MLM base, averaged input word embeddings | 1 |" in objective
    assert {job["job"] for job in Layout(out).jobs()} >= {"base-setup-0", "base-setup-1", "base", "lr-0.001",
                                                         "objective-seed1", "report-objective"}
    # a second call finds every job done and the base reused: nothing is trained again
    again = run_py("task=reproduce", "reproduce=gpu", f"reproduce.output_dir={out}", f"reproduce.doc={tmp_path / 'doc.md'}",
                   f"reproduce.overrides=[{','.join(tiny)}]", "reproduce.seeds=[1]", "reproduce.axes=[objective]",
                   "reproduce.transfer_axes=[]", "reproduce.learning_rates=[1e-3]", "reproduce.lr_steps=2",
                   "reproduce.baselines=[mlm_base,word_embeddings]", "reproduce.eval_overrides=['eval.max_examples=50']")
    assert again.returncode == 0 and "finished before: skipped." in again.stdout and "start " not in again.stdout
