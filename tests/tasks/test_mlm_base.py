"""experiment=mlm_base: MLM pretraining from random init on contiguous windows, resumable, ending in a model folder
that model=bert_mini_mlm trains DeCLUTR on; and every bad input named before training starts."""

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM

from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.tasks import prepare, train
from declutr.tokenizer import load_tokenizer
from tests.helpers.paths import DATA_DIR, STATE_UNION

# A few steps of the real recipe on short windows; the checkpoint callback saves last.ckpt every 3 steps.
SMALL = [f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "data.batch_size=2",
         "data.sampler.window_len=30", "data.sampler.windows_per_document=2", "evaluate.enabled=false",
         "callbacks.stsb_dev.every_n_steps=3", "callbacks.stsb_dev.max_examples=20", "trainer.log_every_n_steps=1"]


def test_the_recipe_is_mlm_only_on_windows_of_a_random_init_bert(make_config, tmp_path):
    cfg = make_config("experiment=mlm_base", f"paths.mlm_base_dir={tmp_path / 'base'}")
    assert cfg.data.sampler._target_ == "declutr.data.windows.WindowSampler" and cfg.data.sampler.window_len == 126
    assert (cfg.model.contrastive_weight, cfg.model.mlm_weight, cfg.data.mlm_probability) == (0.0, 1.0, 0.15)
    assert cfg.model.encoder.random_init is True and cfg.model.encoder.config_overrides.num_hidden_layers == 4
    on_base = make_config("experiment=scale/miniature", f"paths.mlm_base_dir={tmp_path / 'base'}")
    assert on_base.model.encoder.name_or_path == str(tmp_path / "base" / "model")
    assert on_base.model.encoder.random_init is False and on_base.data.sampler.num_anchors == 2


def test_pretraining_resumes_and_its_model_is_a_base_for_declutr(make_config, tmp_path):
    base = tmp_path / "base"
    first = train.run(make_config("experiment=mlm_base", *SMALL, "trainer.max_steps=6", f"paths.output_dir={base}"))
    assert first["steps"] == 6 and (base / "checkpoints" / "last.ckpt").is_file()
    resumed = train.run(make_config("experiment=mlm_base", *SMALL, "trainer.max_steps=8", f"paths.output_dir={base}",
                                    f"ckpt_path={base / 'checkpoints' / 'last.ckpt'}"))
    assert resumed["steps"] == 8
    model = AutoModelForMaskedLM.from_pretrained(base / "model")
    assert (model.config.num_hidden_layers, model.config.hidden_size) == (4, 256)
    assert load_tokenizer(base / "model").get_vocab() == load_tokenizer(_minilm_path()).get_vocab()

    declutr = train.run(make_config("experiment=scale/miniature", f"paths.mlm_base_dir={base}", *SMALL[:2],
                                    "evaluate.enabled=false", "trainer.max_steps=2",
                                    "data.batch_size=2", "data.sampler.max_span_len=64", f"paths.output_dir={tmp_path / 'run'}"))
    assert declutr["steps"] == 2
    trained = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "model")
    assert not torch.equal(trained.bert.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)


def other_tokenizer_model(folder: Path) -> Path:
    """A model folder whose tokenizer is not MiniLM's (its vocabulary file has one more line): its ids mean other
    tokens."""
    load_tokenizer(_minilm_path()).save_pretrained(folder)
    (folder / "tokenizer.json").unlink()  # rebuilt from vocab.txt, with the extra token
    with open(folder / "vocab.txt", "a", encoding="utf-8") as vocab:
        vocab.write("zzzextra\n")
    AutoModelForMaskedLM.from_pretrained(_minilm_path()).config.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing", r"model.encoder.name_or_path=.*/nowhere/model does not exist.*experiment=mlm_base"),
    ("run folder", r"is not a model folder \(no config.json\)\. It is a run folder: use .*/model"),
    ("window too long", r"data.sampler.window_len=600 plus 2 special tokens exceeds the model's 512 positions: "
                        r"set data.sampler.window_len<=510"),
    ("corpus too small", r"No usable document.*needs at least data.sampler.window_len = 126 tokens"),
    ("contrastive on windows", r"gives no positives, so model.contrastive_weight=1.0 has nothing to contrast"),
    ("other tokenizer", r"token-id shards in .* were made by the tokenizer .* \(30522 tokens.* but this run's model "
                        r"tokenises with .*other \(\d+ tokens"),
])
def test_bad_inputs_fail_before_training_naming_the_setting(make_config, tmp_path, raw_corpus, case, message):
    overrides = ["experiment=mlm_base", f"paths.data_dir={DATA_DIR}", f"paths.mlm_base_dir={tmp_path / 'base'}",
                 f"data.files=[{STATE_UNION}]"]  # (a clean clone has no prepared corpus)
    if case == "missing":
        overrides = ["experiment=scale/miniature", f"paths.mlm_base_dir={tmp_path / 'nowhere'}"]
    elif case == "run folder":
        run_folder = tmp_path / "a_run"
        (run_folder / "model").mkdir(parents=True)
        AutoModelForMaskedLM.from_pretrained(_minilm_path()).config.save_pretrained(run_folder / "model")
        overrides += [f"model.encoder.name_or_path={run_folder}"]
    elif case == "window too long":
        overrides += ["data.sampler.window_len=600"]
    elif case == "corpus too small":
        corpus = tmp_path / "tiny_corpus"
        corpus.mkdir()
        (corpus / "a.txt").write_text("far fewer than one window of tokens")
        overrides += [f"data.files=[{corpus}]"]
    elif case == "contrastive on windows":
        overrides += ["model.contrastive_weight=1.0"]
    else:  # token ids prepared with MiniLM's tokenizer, a base with another one
        prepared = tmp_path / "prepared"
        prepare.run(make_config("task=prepare", f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={prepared}"))
        base = other_tokenizer_model(tmp_path / "other")
        overrides = ["experiment=scale/miniature", f"model.encoder.name_or_path={base}", "data.format=tokens",
                     f"paths.prepared_dir={prepared}"]
    cfg = make_config(*overrides)
    with pytest.raises(DeclutrConfigError, match=message):
        train.run(cfg)
    assert not (Path(cfg.paths.output_dir) / "model").exists(), "nothing trained, nothing written"
    shutil.rmtree(tmp_path / "base", ignore_errors=True)
