"""Keys that are not settings: a key added with ``+`` that what its node is passed to does not take is refused by
``validate`` with the nearest valid keys, and a plain ``key=value`` that Hydra could not apply is explained the
same way. New nodes with their own ``_target_``, targets taking ``**kwargs`` and parameters that conf/ does not set
stay allowed. (The run.py routes end to end: tests/test_run_py.py.)
"""

import pytest
from omegaconf import OmegaConf

from declutr.config.keys import explain_failed_composition, parameters, unknown_keys
from declutr.config.primary import config_name
from declutr.config.schema import violations
from tests.helpers.configs import compose_hydra
from tests.helpers.paths import ROOT


@pytest.mark.parametrize("override, line", [
    ("+data.sampler.num_anchor=4", "data.sampler.num_anchor is not a setting: did you mean data.sampler.num_anchors? "
                                   "(data.sampler.num_anchor=4 would be passed to declutr.data.spans.SpanSampler, "
                                   "which takes no num_anchor: use the key suggested, or remove it)."),
    # model.encoder has no _target_: DeCLUTRModule passes it to load_masked_lm(**encoder)
    ("+model.encoder.name_or_pth=x", "model.encoder.name_or_pth is not a setting: did you mean "
                                     "model.encoder.name_or_path?"),
    ("+model.grad_cache.chunk=8", "model.grad_cache.chunk is not a setting: did you mean "
                                  "model.grad_cache.chunk_size?"),
    ("+model.optimizer.weight_decy=0.1", "model.optimizer.weight_decy is not a setting: did you mean "  # _partial_
                                         "model.optimizer.weight_decay? (model.optimizer.weight_decy=0.1 would be "
                                         "passed to torch.optim.AdamW"),
    ("+trainer.max_step=3", "trainer.max_step is not a setting: did you mean trainer.max_steps?"),
    ("+model.temperature=0.1", "model.temperature is not a setting any more: it moved to model.loss.temperature "
                               "(model.temperature=0.1 would be passed to declutr.model.module.DeCLUTRModule, which "
                               "takes no temperature: use the key suggested, or remove it)."),
    ("+model.loss.scale=20", "model.loss.scale is not a setting (model.loss.scale=20 would be passed to "
                             "declutr.model.losses.NTXentLoss, which takes no scale: remove it; "
                             "declutr.model.losses.NTXentLoss takes temperature)."),
    ("task=eval +eval.protocol.kfolds=3", "eval.protocol.kfolds is not a setting: did you mean eval.protocol.kfold?"),
    ("+data.sampler.zzz=1", "data.sampler.zzz is not a setting (data.sampler.zzz=1 would be passed to "
                            "declutr.data.spans.SpanSampler, which takes no zzz: remove it; "
                            "declutr.data.spans.SpanSampler takes max_span_len, min_span_len, num_anchors, "
                            "num_positives, strategy)."),
])
def test_an_added_key_that_its_node_does_not_take_is_refused_with_the_nearest_keys(override, line):
    found = violations(compose_hydra(*override.split()))
    assert len(found) == 1 and found[0].startswith(line), found


@pytest.mark.parametrize("overrides", [
    ["+logger.tb._target_=lightning.pytorch.loggers.TensorBoardLogger", "+logger.tb.save_dir=x"],  # a new node
    ["+callbacks.lr._target_=lightning.pytorch.callbacks.LearningRateMonitor", "+callbacks.lr.logging_interval=step"],
    ["logger=wandb", "+logger.wandb.entity=me"],  # WandbLogger(**kwargs) takes any key
    ["+trainer.val_check_interval=0.5", "+model.optimizer.betas=[0.9,0.98]"],  # parameters conf/ does not set
    ["+callbacks.x._target_=no.such.Callback", "+callbacks.x.y=1"],  # unimportable: building it names the target
])
def test_keys_that_what_receives_them_takes_are_allowed(overrides):
    assert unknown_keys(compose_hydra(*overrides)) == []


def test_parameters_are_the_keywords_of_the_target_and_none_for_kwargs():
    assert parameters("declutr.data.spans.SpanSampler") == {"num_anchors", "num_positives", "min_span_len",
                                                            "max_span_len", "strategy"}
    assert parameters("lightning.pytorch.loggers.WandbLogger") is None  # **kwargs
    assert parameters("no.such.module.Thing") is None


def explain(*argv: str) -> list[str]:
    return explain_failed_composition(list(argv), ROOT / "conf", config_name(list(argv), ROOT / "conf"))


@pytest.mark.parametrize("argv, lines", [
    (["data.sampler.num_anchor=4"], ["data.sampler.num_anchor is not a setting: did you mean "
                                     "data.sampler.num_anchors? (from data.sampler.num_anchor=4)"]),
    (["data.samplr.num_anchors=4"], ["data.samplr.num_anchors is not a setting: did you mean "
                                     "data.sampler.num_anchors? (from data.samplr.num_anchors=4)"]),
    (["-m", "data.sampler.num_anchor=1,2"], ["data.sampler.num_anchor is not a setting: did you mean "
                                             "data.sampler.num_anchors? (from data.sampler.num_anchor=1,2)"]),
    (["~data.sampler.num_anchor"], ["data.sampler.num_anchor is not a setting: did you mean "
                                    "data.sampler.num_anchors? (from ~data.sampler.num_anchor)"]),
    (["data/sampler=windows", "data.sampler.window_le=3"], ["data.sampler.window_le is not a setting: did you "
                                                            "mean data.sampler.window_len? (from "
                                                            "data.sampler.window_le=3)"]),
    (["--cfg", "job", "sed=3", "model.loss.temprature=0.1"], ["sed is not a setting: did you mean seed? (from sed=3)",
                                                              "model.loss.temprature is not a setting: did you mean "
                                                              "model.loss.temperature? (from "
                                                              "model.loss.temprature=0.1)"]),
    # a setting that moved: its new path
    (["model.temperature=0.1"], ["model.temperature is not a setting any more: it moved to model.loss.temperature "
                                 "(from model.temperature=0.1)"]),
    # each task's config has only its own sections: another task's is named with the tasks that have it
    (["task=eval", "eval.max_exampls=3"], ["eval.max_exampls is not a setting: did you mean eval.max_examples? "
                                           "(from eval.max_exampls=3)"]),
    (["task=eval", "data.batch_size=3"], ["data.batch_size is not a setting of task=eval: data is a section of "
                                          "task=train (from data.batch_size=3)"]),
    (["sweep_dir=multirun/x"], ["sweep_dir is not a setting of task=train: sweep_dir is a section of task=report "
                                "(from sweep_dir=multirun/x)"]),
    # Hydra's "+" advice is right for a parameter that conf/ does not set
    (["trainer.val_check_interval=0.5"], ["trainer.val_check_interval is not in the config, but "
                                          "lightning.pytorch.Trainer takes val_check_interval: add it with "
                                          "+trainer.val_check_interval=0.5."]),
])
def test_a_plain_override_of_a_key_the_config_lacks_gets_the_nearest_keys(argv, lines):
    assert explain(*argv) == lines


@pytest.mark.parametrize("argv", [
    [],  # composes: the run failed later
    ["model=minilmm"],  # Hydra names the options itself
    ["data.batch_size=[1"],  # and where the syntax breaks
    ["--config-dir", "/tmp", "data.sampler.num_anchor=4"],  # another config folder: not mirrored
])
def test_other_failures_are_left_to_hydras_own_message(argv):
    assert explain(*argv) == []


def test_the_explanation_leaves_no_hydra_state_behind():
    explain("data.sampler.num_anchor=4")
    assert OmegaConf.select(compose_hydra("data.batch_size=3"), "data.batch_size") == 3
