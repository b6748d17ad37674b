"""What identifies a run: its key settings read from the config it ran with, and its ablation axis."""

from omegaconf import OmegaConf

from declutr.runs.context import KEY_SETTINGS, run_axis, run_context
from tests.helpers.configs import compose_config


def test_every_key_setting_is_read_from_the_run_config(tmp_path):
    cfg = compose_config(["model=bert_mini_mlm", "data.sampler.num_anchors=4", "model.optimizer.lr=1e-4"], tmp_path)
    context = run_context(cfg)
    settings = context["settings"]
    assert settings["model"] == "bert_mini_mlm" and settings["num_anchors"] == 4 and settings["lr"] == 1e-4
    assert settings == {"model": "bert_mini_mlm"} | {name: OmegaConf.select(cfg, key) for name, key in
                                                      KEY_SETTINGS.items()}
    assert [name for name, value in settings.items() if value is None] == [], "a key setting not in the config"
    assert context["swept"] == {} and context["axis"] is None  # a single run of no ablation


def test_the_axis_is_report_axis_else_the_ablation_experiment():
    assert run_axis(OmegaConf.create({"report": {"axis": None}}), "ablation/anchors") == "anchors"
    assert run_axis(OmegaConf.create({"report": {"axis": "lr"}}), "ablation/anchors") == "lr"
    assert run_axis(OmegaConf.create({"report": {"axis": None}}), "declutr_small") is None
