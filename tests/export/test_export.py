"""The export folder writer and the model card, on a real tiny model (no training needed)."""

import contextlib
import json
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file

from declutr import Encoder
from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError, DeclutrNumericalError
from declutr.export import TrainingRecord, write_export
from declutr.export.folder import push_to_hub
from declutr.export.model_card import render_model_card
from declutr.model.huggingface import MLM_HEAD_FILE, load_masked_lm
from tests.helpers.model import TINY

SENTENCES = ["A man is playing a guitar.", "Hi", "Two dogs run across a snowy field while their owner watches."]

RECORD = TrainingRecord(base_model="sentence-transformers/all-MiniLM-L6-v2", corpus=["corpus/a.jsonl", "corpus/b.txt"],
                        steps=250, config={"model": {"encoder": {"name_or_path": "x"}},
                                           "data": {"batch_size": 4, "sampler": {"num_anchors": 2, "num_positives": 2,
                                                    "min_span_len": 32, "max_span_len": 128, "strategy": "overlap"}}},
                        results={"before training": {"stsb_dev": 86.72, "stsb_test": 82.03},
                                 "after training": {"stsb_dev": 86.87}})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return load_masked_lm(**TINY)


def test_folder_layout_and_sentence_transformers_configs(model, tokenizer, tmp_path):
    target = write_export(model, tokenizer, tmp_path / "out", RECORD, window=128)
    modules = json.loads((target / "modules.json").read_text())
    assert [(m["path"], m["type"]) for m in modules] == [("", "sentence_transformers.models.Transformer"),
                                                         ("1_Pooling", "sentence_transformers.models.Pooling")]
    assert json.loads((target / "sentence_bert_config.json").read_text())["max_seq_length"] == 128
    pooling = json.loads((target / "1_Pooling" / "config.json").read_text())
    assert pooling["word_embedding_dimension"] == 32 and pooling["pooling_mode_mean_tokens"]
    assert not any(v for k, v in pooling.items() if k.startswith("pooling_mode") and k != "pooling_mode_mean_tokens")
    assert json.loads((target / "config.json").read_text())["architectures"] == ["BertModel"], "the encoder alone"
    assert not any(name.startswith("cls.") for name in load_file(target / "model.safetensors"))
    with safe_open(str(target / MLM_HEAD_FILE), framework="pt") as head:  # the MLM head beside it, with a note
        assert sorted(head.keys()) == ["cls.predictions.bias", "cls.predictions.transform.LayerNorm.bias",
                                       "cls.predictions.transform.LayerNorm.weight",
                                       "cls.predictions.transform.dense.bias", "cls.predictions.transform.dense.weight"]
        assert head.metadata()["base_model_prefix"] == "bert" and "further pretraining" in head.metadata()["note"]
    assert TrainingRecord(**json.loads((target / "declutr_training.json").read_text())) == RECORD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no temporary folder is left behind"


@contextlib.contextmanager
def everything_said(capfd):
    """Yields a list that, after the block, holds all the block printed (stdout and stderr, at the file descriptors),
    logged at WARNING or above (transformers' own logger does not propagate) and warned (``warnings.warn``), with
    transformers' verbosity at its default, WARNING; its progress bar ("Loading weights", on every load) is off."""
    said, records = [], []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    loggers = [logging.getLogger(), logging.getLogger("transformers")]
    verbosity, bars = transformers.logging.get_verbosity(), transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_warning()
    transformers.logging.disable_progress_bar()
    capfd.readouterr()
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            yield said
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()
    out, err = capfd.readouterr()
    said += [text for text in (out, err) if text] + records + [str(w.message) for w in warned]


def mean_pooled(model, tokenizer, texts) -> torch.Tensor:
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return (hidden * mask).sum(1) / mask.sum(1)


def test_an_export_loads_without_any_load_report_and_gives_our_encoder_s_vectors(model, tokenizer, tmp_path, capfd):
    from sentence_transformers import SentenceTransformer

    target = write_export(model, tokenizer, tmp_path / "out", RECORD, window=128)
    with everything_said(capfd) as said:
        st = SentenceTransformer(str(target), device="cpu")
        auto = transformers.AutoModel.from_pretrained(target)
    assert said == [], "the load reports nothing: no unexpected, missing or newly initialized weight"
    reference = Encoder(target, device="cpu").encode(SENTENCES, convert_to_tensor=True)
    torch.testing.assert_close(st.encode(SENTENCES, convert_to_tensor=True), reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(mean_pooled(auto, tokenizer, SENTENCES), reference, atol=1e-5, rtol=0)

    model.save_pretrained(tmp_path / "masked_lm")  # the control: a plain masked-LM save does report, and is heard
    with everything_said(capfd) as said:
        transformers.AutoModel.from_pretrained(tmp_path / "masked_lm")
    assert any("LOAD REPORT" in text and "MISSING" in text for text in said), said


def test_model_card_states_base_model_corpus_steps_results_and_config():
    card = render_model_card(RECORD, "my-encoder", dim=384, window=256)
    assert card.startswith("---\nlicense: apache-2.0\nlanguage: [en]\nlibrary_name: sentence-transformers\n")
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2\n" in card and "# my-encoder\n" in card
    assert "384 dimensions, texts truncated at 256 tokens" in card and "max_length=256" in card
    assert "Corpus: `corpus/a.jsonl`, `corpus/b.txt`" in card and "Optimizer steps: 250" in card
    assert "4 documents x 2 anchors x 2 positives, spans of 32-128 tokens (overlap positives)" in card
    assert "| metric | before training | after training |" in card
    assert "| stsb_dev | 86.72 | 86.87 |" in card and "| stsb_test | 82.03 |  |" in card
    assert "## Full configuration\n\n```yaml\nmodel:\n  encoder:\n    name_or_path: x\n" in card


def test_model_card_of_a_model_not_trained_here():
    card = render_model_card(TrainingRecord(base_model="/models/local-bert"), "local-bert", dim=768, window=512)
    assert "A sentence encoder `local-bert`." in card and "/models" not in card
    assert "base_model:" not in card, "local paths are not hub names"
    assert "## Training" not in card and "## Evaluation" not in card and "## Full configuration" not in card


def test_existing_folders_are_replaced_only_when_asked_and_only_if_they_hold_a_model(model, tokenizer, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(DeclutrConfigError, match="mine already exists: set export.overwrite=true"):
        write_export(model, tokenizer, mine, RECORD)
    with pytest.raises(DeclutrConfigError, match="not a model folder .*refusing to replace it"):
        write_export(model, tokenizer, mine, RECORD, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"

    target = write_export(model, tokenizer, tmp_path / "out", RECORD)
    (target / "stale.bin").write_text("from the previous export")
    with pytest.raises(DeclutrConfigError, match="already exists"):
        write_export(model, tokenizer, target, RECORD)
    write_export(model, tokenizer, target, RECORD, overwrite=True)
    assert not (target / "stale.bin").exists() and (target / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "out"]


def test_non_finite_weights_are_never_exported_and_the_previous_export_stays(tokenizer, tmp_path):
    torch.manual_seed(0)
    model = load_masked_lm(**TINY)
    target = write_export(model, tokenizer, tmp_path / "out", RECORD)
    before = (target / "model.safetensors").read_bytes()
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.weight[0, 0] = float("nan")
    with pytest.raises(DeclutrNumericalError, match=rf"Export to {target} refused: 1 weight tensor\(s\) hold NaN or "
                                                    r"infinite values \(bert\.encoder\.layer\.1\.output\.dense"):
        write_export(model, tokenizer, target, RECORD, overwrite=True)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_model_card_of_an_mlm_pretrained_base_describes_its_windows():
    record = TrainingRecord(base_model="/models/bert", steps=1200, config={
        "data": {"batch_size": 8, "sampler": {"window_len": 126, "windows_per_document": 4}}})
    card = render_model_card(record, "mlm_base", dim=256, window=128)
    assert "8 documents x 4 contiguous windows of 126 tokens (MLM pretraining)" in card and "anchors" not in card


def test_model_card_carries_hub_metadata_a_title_the_citation_and_no_local_path(tmp_path):
    data_dir = tmp_path / "data"
    record = TrainingRecord(
        base_model=_minilm_path(), corpus=[str(data_dir / "corpus")], steps=600,
        config={"model": {"encoder": {"name_or_path": _minilm_path()}}, "paths": {"data_dir": str(data_dir)},
                "data": {"files": [str(data_dir / "corpus")]}, "elsewhere": "/opt/somewhere/file.txt",
                "here": str(Path.cwd() / "outputs" / "run")},
        results={"before training": {"stsb_dev": 54.0}, "after training": {"stsb_dev": 55.5, "stsb_test": 44.1}})
    card = render_model_card(record, "model", dim=256, window=130, license="mit", language="en")
    assert "# DeCLUTR all-MiniLM-L6-v2\n" in card, "a training run's folder name 'model' is no title"
    front = card.split("---")[1]
    assert "license: mit" in front and "language: [en]" in front
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in front
    assert "model-index:" in front and "value: 55.50" in front and "value: 44.10" in front and "54.0" not in front
    assert 'datasets: ["corpus"]' in front
    assert "## Framework versions" in card and f"- torch: {torch.__version__}" in card
    assert "@inproceedings{giorgi-etal-2021-declutr" in card
    config = card.split("## Full configuration")[1]
    assert "name_or_path: sentence-transformers/all-MiniLM-L6-v2" in config
    assert "<data_dir>/corpus" in config and "./outputs/run" in config and "<local>/file.txt" in config
    assert str(tmp_path) not in config and "site-packages" not in config


class StandInHub:
    """Records what an upload sends, as the Hugging Face Hub would receive it (the Hub is unreachable here)."""

    def __init__(self):
        self.repos, self.uploads = {}, []

    def create_repo(self, repo_id, private, exist_ok, repo_type):
        assert exist_ok and repo_type == "model"
        self.repos.setdefault(repo_id, private)

    def upload_folder(self, folder_path, repo_id, repo_type, commit_message):
        assert repo_id in self.repos
        self.uploads.append((repo_id, sorted(p.name for p in Path(folder_path).iterdir())))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/abc")


def test_push_to_hub_creates_the_repo_and_uploads_the_whole_folder(model, tokenizer, tmp_path):
    target = write_export(model, tokenizer, tmp_path / "out", RECORD, window=128)
    hub = StandInHub()
    url = push_to_hub(target, "me/declutr-tiny", private=True, api=hub)
    assert url == "https://huggingface.co/me/declutr-tiny/commit/abc" and hub.repos == {"me/declutr-tiny": True}
    ((repo, files),) = hub.uploads
    assert {"README.md", "config.json", "modules.json", "model.safetensors", "declutr_training.json"} <= set(files)
    with pytest.raises(DeclutrConfigError, match="export.hub_model_id='declutr-tiny' is not a Hub repo id"):
        push_to_hub(target, "declutr-tiny", api=hub)


def interleaved(model, tokenizer, target, overwrite: bool):
    """A tokenizer whose ``save_pretrained`` saves its files, then runs a whole second export of ``target`` (steps=2)
    in the middle of the first one (steps=250), after its weights: two processes exporting one folder at once, in a
    fixed order."""

    def save_pretrained(folder):
        tokenizer.save_pretrained(folder)
        write_export(model, tokenizer, target, TrainingRecord(base_model="x", steps=2), overwrite=overwrite)

    return SimpleNamespace(save_pretrained=save_pretrained, model_max_length=tokenizer.model_max_length)


def test_concurrent_exports_of_one_folder_never_delete_each_others_temporary_folder(model, tokenizer, tmp_path):
    """Each export writes a temporary folder of its own; with overwrite the last swap wins, and both succeed."""
    target = tmp_path / "model"
    write_export(model, interleaved(model, tokenizer, target, True), target, RECORD, overwrite=True)
    assert json.loads((target / "declutr_training.json").read_text())["steps"] == RECORD.steps, "the last swap won"
    assert (target / "model.safetensors").is_file() and (target / "config.json").is_file(), "its weights were kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no temporary or moved-aside folder is left"


def test_without_overwrite_an_export_that_lost_the_race_fails_clearly_and_keeps_the_winner(model, tokenizer, tmp_path):
    target = tmp_path / "model"
    with pytest.raises(DeclutrConfigError, match="model was written by another process while this export was being "
                                                 r"written: export each model to its own folder \(export.output\)"):
        write_export(model, interleaved(model, tokenizer, target, False), target, RECORD)
    assert json.loads((target / "declutr_training.json").read_text())["steps"] == 2, "the other export is intact"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
