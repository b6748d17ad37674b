"""W&B runs that group, name themselves and resume: a sweep's jobs share the experiment as their group, each job is
named by its overrides, and a run resumed from its checkpoint continues the same W&B run."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from declutr.report.loggers import run_tags
from declutr.report.wandb_run import group, run_folder, run_id
from tests.helpers.runs import FAST, run_py
from tests.helpers.wandb_log import config_and_history_keys, history_values, record_kinds, run_identity


def test_a_resumed_job_continues_the_run_of_the_folder_holding_its_checkpoint(tmp_path):
    first = OmegaConf.create({"paths": {"output_dir": str(tmp_path / "a")}, "ckpt_path": None})
    resumed = OmegaConf.create({"paths": {"output_dir": str(tmp_path / "b")},
                                "ckpt_path": str(tmp_path / "a" / "checkpoints" / "last.ckpt")})
    assert run_folder(resumed) == run_folder(first) == (tmp_path / "a").resolve()
    assert run_id(run_folder(resumed)) == run_id(run_folder(first)) != run_id(tmp_path / "b")


def test_an_ablation_groups_by_axis_and_scale_and_tags_the_swept_setting():
    context = {"experiment": "ablation/anchors", "axis": "anchors", "scale": "miniature", "git_commit": "abc1234",
               "swept": {"data.sampler.num_anchors": "4"}}
    assert group(context) == "anchors@miniature"
    assert run_tags(context) == ["experiment:ablation/anchors", "axis:anchors", "scale:miniature", "commit:abc1234",
                                   "data.sampler.num_anchors=4"]
    assert group({"experiment": "declutr_small", "axis": None}) == "declutr_small" and group({}) is None


@pytest.mark.slow
def test_wandb_run_is_named_grouped_typed_and_resumed_with_one_copy_of_the_settings(tmp_path):
    common = [*FAST, "experiment=scale/smoke", "logger=wandb", "callbacks.stsb_dev.every_n_steps=2",
              "evaluate.tasks.stsb_test=null", "data.num_workers=0", "log_documents=false",
              "callbacks.model_checkpoint.save_last=true"]
    # log_model needs Lightning's offline=false; WANDB_MODE=offline (run_py's) still keeps the run on disk
    first = run_py(*common, "trainer.max_steps=4", "logger.wandb.log_model=true", "logger.wandb.offline=false",
                   f"hydra.run.dir={tmp_path / 'first'}")
    assert first.returncode == 0, first.stderr[-3000:]
    (run_file,) = (tmp_path / "first" / "wandb").glob("offline-run-*/run-*.wandb")
    identity = run_identity(run_file)
    assert identity["group"] == "scale/smoke" and identity["job_type"] == "train"
    assert "trainer.max_steps=4" in identity["name"] and "experiment=scale/smoke" in identity["name"]
    config, _ = config_and_history_keys(run_file)
    assert {"model", "data", "trainer"} <= config and "temperature" not in config, "the settings are logged once"
    history = history_values(run_file)
    assert len(history["before/stsb_dev"]) == 1 and history["test/stsb_dev"], "scores before and after training"
    metrics = record_kinds(run_file, "metric")
    assert any(m.glob_name == "val/*" and m.summary.max for m in metrics), "val/* summaries keep the best value"
    (artifact,) = [a for a in record_kinds(run_file, "artifact") if a.name.startswith("encoder-")]
    assert artifact.type == "model"
    files = {entry.path for entry in artifact.manifest.contents}
    assert {"README.md", "config.json", "model.safetensors"} <= files, "the exported model/ folder"

    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = run_py(*common, "trainer.max_steps=6", f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'resumed'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (resumed_file,) = (tmp_path / "resumed" / "wandb").glob("offline-run-*/run-*.wandb")
    assert run_identity(resumed_file)["id"] == identity["id"], "the same W&B run continues"
    assert run_identity(resumed_file)["name"] == identity["name"], "under its name, not the resume's command line"
    assert Path(last).is_file()
