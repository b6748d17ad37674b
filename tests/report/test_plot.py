"""A PNG per varied setting: lines with error bars, the baseline drawn, points only for random searches."""

import matplotlib.image
import numpy as np

from declutr.report.collect import find_runs
from declutr.report.plot import MAX_LINES, plot_setting, training_curve
from tests.helpers.sweeps import add_job


def image(path):
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 300
    return pixels


def test_numeric_setting_with_seeds_and_a_second_setting(tmp_path):
    for job, (anchors, positives, seed) in enumerate(
            [(a, p, s) for a in (1, 2, 4) for p in (1, 2) for s in (1, 2)]):
        add_job(tmp_path, str(job), [f"data.sampler.num_anchors={anchors}", f"data.sampler.num_positives={positives}",
                                     f"seed={seed}"], before={"stsb_dev": 80.0, "stsb_test": 75.0},
                after={"stsb_dev": 80 + anchors + seed / 10, "stsb_test": 75 + positives})
    keys = ["data.sampler.num_anchors", "data.sampler.num_positives"]
    path = plot_setting(find_runs(tmp_path), keys[0], keys, ["stsb_dev", "stsb_test"], tmp_path / "out" / "A.png", "A")
    pixels = image(path)
    assert pixels.shape[1] > pixels.shape[0], "one panel per metric, side by side"
    assert np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0).shape[0] > 20, "not a blank canvas"


def test_categorical_model_setting_puts_each_baseline_at_its_model(tmp_path):
    for job, model in enumerate(["tiny", "minilm"]):
        add_job(tmp_path, str(job), [f"model={model}"], model=model, before={"stsb_dev": 40.0 + 40 * job},
                after={"stsb_dev": 45.0 + 40 * job})
    image(plot_setting(find_runs(tmp_path), "model", ["model"], ["stsb_dev"], tmp_path / "model.png", "model size"))


def test_a_random_search_is_drawn_as_points(tmp_path):
    for job in range(MAX_LINES + 3):
        add_job(tmp_path, str(job),
                [f"model.loss.temperature={0.02 + job / 100}", f"model.optimizer.lr={1e-5 * (job + 1)}"],
                after={"stsb_dev": 80.0 + job})
    keys = ["model.loss.temperature", "model.optimizer.lr"]
    image(plot_setting(find_runs(tmp_path), keys[1], keys, ["stsb_dev"], tmp_path / "lr.png", "search"))


def test_a_resumed_run_s_curve_keeps_each_step_once_from_its_latest_version(tmp_path):
    def log(version: int, rows: str) -> None:
        folder = tmp_path / "csv" / f"version_{version}"
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text("epoch,step,train/mlm_loss,train/lr\n" + rows)

    log(0, "0,10,7.0,\n0,20,6.5,\n0,30,6.4,\n0,30,,0.001\n")  # stopped after step 30, last checkpoint at step 20
    log(1, "0,30,6.3,\n0,40,6.2,\n")  # resumed from step 20: step 30 again
    for version in range(2, 11):  # version_10 sorts after version_2..9, not after version_1
        log(version, f"0,{40 + 10 * version},{6.0 - version / 100},\n")
    points = training_curve(tmp_path, "train/mlm_loss")
    assert points[:4] == [(10, 7.0), (20, 6.5), (30, 6.3), (40, 6.2)]
    assert [step for step, _ in points] == sorted({step for step, _ in points}) and points[-1] == (140, 5.9)
