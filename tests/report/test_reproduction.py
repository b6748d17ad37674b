"""The write-up of task=reproduce: baselines in every table, mean ± std over seeds, verdicts against the paper's
findings, the base's loss curve, wall times and commands, all from run folders laid out as the task leaves them."""

import json
from pathlib import Path

from declutr.data.mlm_reference import context_free_loss
from declutr.data.token_shards import corpus_token_counts, unigram_entropy
from declutr.eval.suite import SuiteResult, write_results
from declutr.eval.task import Score
from declutr.report.aggregate import Stat
from declutr.report.reproduction import Layout, verdict, write_reproduction
from declutr.report.results import OK, RunResult, write_result
from tests.helpers.sweeps import add_job

OPTIONS = {"output_dir": "outputs/reproduce", "seeds": [1, 2, 3], "axes": ["objective", "anchors"],
           "transfer_axes": ["objective"], "learning_rates": [1e-4, 1e-3],
           "baselines": ["random_init", "mlm_base", "word_embeddings"],
           "base": {"experiment": "mlm_base", "corpus": None, "description": "bert_mini from random init, MLM only."}}


def options_with_corpus(corpus) -> dict:
    return OPTIONS | {"base": OPTIONS["base"] | {"corpus": str(corpus)}}


def test_verdicts_weigh_the_difference_against_the_spread():
    assert verdict(Stat(60.0, 1.0, 3), Stat(50.0, 2.0, 3)) == "+10.00 (reproduces)"
    assert verdict(Stat(50.5, 1.0, 3), Stat(50.0, 2.0, 3)) == "+0.50 (within noise)"
    assert verdict(Stat(45.0, 1.0, 3), Stat(50.0, 2.0, 3)) == "-5.00 (opposite)"
    assert verdict(Stat(60.0, 0.0, 1), Stat(50.0, 0.0, 1)).endswith("(one seed: no spread to judge by)")
    assert verdict(None, Stat(50.0, 2.0, 3)) == "not measured"


def miniature(tmp_path):
    layout = Layout(tmp_path / "out")
    write_result(layout.base, RunResult(status=OK, before={"stsb_dev": 55.0, "stsb_test": 44.0},
                                        after={"stsb_dev": 47.0, "stsb_test": 34.0}, steps=1200, seconds=1500.0,
                                        tokens_per_s=3500.0))
    (layout.base / "csv" / "version_0").mkdir(parents=True)
    (layout.base / "csv" / "version_0" / "metrics.csv").write_text(
        "epoch,step,train/mlm_loss\n" + "".join(f"0,{s},{10 - s / 200}\n" for s in range(0, 1200, 10)))
    for name, (dev, test) in {"random_init": (55.0, 44.0), "mlm_base": (47.0, 34.0),
                              "word_embeddings": (52.0, 48.0)}.items():
        scores = [Score("STSB dev", "spearman", dev, "sts"), Score("STSB", "spearman", test, "sts"),
                  Score("MR", "accuracy", 60.0, "transfer")]
        write_results(SuiteResult(scores), layout.baseline(name), "eval-stsb", {"max_examples": None})
    for lr, dev in ((1e-4, 50.0), (1e-3, 58.0)):
        write_result(layout.lr_run(lr), RunResult(status=OK, after={"stsb_dev": dev, "stsb_test": dev - 5}, steps=300))
    for seed in (1, 2, 3):
        for k, (objective, test) in enumerate((("contrastive_mlm", 50.0), ("contrastive", 48.0), ("mlm", 34.0))):
            add_job(layout.axis("objective") / f"seed{seed}", str(k),
                    ["experiment=ablation/objective", f"experiment/objective={objective}", f"seed={seed}"],
                    before={"stsb_dev": 47.0, "stsb_test": 34.0}, after={"stsb_dev": test + 8, "stsb_test": test + seed},
                    steps=300, axis="objective")
        for k, anchors in enumerate((1, 2, 4)):
            add_job(layout.axis("anchors") / f"seed{seed}", str(k), [f"data.sampler.num_anchors={anchors}", f"seed={seed}"],
                    after={"stsb_dev": 50.0, "stsb_test": 45.0 + anchors + seed / 10}, steps=300, axis="anchors")
    for name, stage in (("base", "base"), ("objective-seed1", "axes")):
        layout.job_record(name).parent.mkdir(parents=True, exist_ok=True)
        layout.job_record(name).write_text(json.dumps({
            "job": name, "stage": stage, "seconds": 60.0,
            "command": f"python run.py hydra.run.dir={layout.root}/x paths.mlm_base_dir={Path.cwd()}/.cache/base",
            "started": 1000.0 if stage == "base" else 1100.0, "ended": 1060.0 if stage == "base" else 1160.0}))
    return layout


def test_write_up_of_a_finished_miniature(tmp_path, prepared_corpus):
    layout = miniature(tmp_path)
    doc = write_reproduction(layout, tmp_path / "docs" / "reproduction.md", options_with_corpus(prepared_corpus))
    text = doc.read_text()
    assert "`python run.py experiment=mlm_base`: bert_mini from random init, MLM only." in text  # reproduce.base
    # the base's final loss (last 10% of its curve: 10 - step / 200 at steps 1080 ... 1190) beside the corpus's
    # unigram entropy, which the loss plot draws too
    assert (f"last 10% of logged steps: 4.33 nats. Predicting every masked token from its corpus frequency alone, "
            f"context unused, costs {unigram_entropy(prepared_corpus):.2f} nats") in text
    counts = corpus_token_counts(prepared_corpus)  # ... and the line of copying visible tokens, context unused
    copying = context_free_loss(counts, len(counts))
    assert f"the best such predictor costs {copying:.2f} nats" in text and f"base ends {copying - 4.33:.2f} nats below it." in text
    assert "unigram" not in write_reproduction(layout, tmp_path / "no_corpus.md", OPTIONS).read_text()
    missing = options_with_corpus(tmp_path / "no_such_corpus")  # not prepared (yet): no reference line, no error
    assert "unigram" not in write_reproduction(layout, tmp_path / "missing_corpus.md", missing).read_text()
    objective = text[text.index("## Objective"):text.index("## Anchors")]
    # every table starts with the baselines, then one row per setting: mean ± std over the 3 seeds
    rows = [line for line in objective.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0] for row in rows[:3]] == ["| random init (bert_mini, mean pooling)",
                                                         "| **MLM base** (bert_mini + MLM pretraining: every run's start)",
                                                         "| MLM base, averaged input word embeddings"]
    assert "| contrastive + MLM (the paper's) — after 300 steps | 3 | 58.00 ± 0.00 | 52.00 ± 1.00 | — |" in objective
    assert "contrastive + MLM (the paper's) vs MLM only: +16.00 (reproduces)" in objective
    assert "contrastive + MLM (the paper's) vs contrastive only: +2.00 (reproduces)" in objective
    assert "- over MLM only, equal steps: +16.00" in objective and "- over random init (bert_mini, mean pooling): +8.00" in objective
    anchors = text[text.index("## Anchors"):text.index("## Wall time")]
    assert "code abc1234." in anchors  # which code the runs ran at
    assert "| 4 — after 300 steps | 3 | 50.00 ± 0.00 | 49.20 ± 0.10 |" in anchors
    assert "2 vs 1: +1.00 (reproduces)" in anchors and "4 vs 2: +2.00 (reproduces)" in anchors
    assert "1200 steps in 25.0 min (3,500 tokens/s)" in text and "44.00 at random init → 34.00" in text
    assert (tmp_path / "docs" / "reproduction" / "mlm_loss.png").is_file() and "(reproduction/mlm_loss.png)" in text
    assert "| 0.001 | 300 | 58.00 | 53.00 |" in text  # the lr stage's runs, with their length
    assert "| base | 1 | 1.0 | 1.0 |" in text and "| all | 2 | 2.0 | 2.0 |" in text  # the 40 s pause between them does not count
    assert "hydra.run.dir=<out>/x" in text and str(layout.root) not in text
    assert "paths.mlm_base_dir=.cache/base" in text and str(Path.cwd()) not in text  # the working folder's paths: relative


def test_missing_stages_are_said_not_hidden(tmp_path):
    layout = Layout(tmp_path / "empty")
    text = write_reproduction(layout, tmp_path / "doc.md", OPTIONS).read_text()
    assert "The base run has not finished." in text
    assert "Not run yet: no finished run under `<out>/axes/objective`." in text and str(layout.root) not in text
