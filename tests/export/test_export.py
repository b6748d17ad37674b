"""The export folder writer and the model card, on a real tiny model (no training needed)."""

import contextlib
import importlib.metadata
import json
import logging
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file

from declutr import Encoder
from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError, DeclutrNumericalError, DeclutrRunError
from declutr.export import TrainingRecord, read_provenance, training_record, write_export
from declutr.export.folder import push_to_hub
from declutr.export.model_card import config_yaml, render_model_card
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
    assert (target / "declutr_config.yaml").read_text() == config_yaml(RECORD), "the full config, beside the card"
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


def test_model_card_states_base_model_corpus_steps_results_and_links_the_config():
    card = render_model_card(RECORD, "my-encoder", dim=384, window=256)
    assert card.startswith("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n")
    assert "library_name: sentence-transformers\n" in card and "# my-encoder\n" in card
    assert "384 dimensions, texts truncated at 256 tokens" in card and "max_length=256" in card
    assert "Corpus: `corpus/a.jsonl`, `corpus/b.txt`" in card and "Optimizer steps: 250\n" in card
    assert "4 documents x 2 anchors x 2 positives, spans of 32-128 tokens (overlap positives)" in card
    assert "| metric | before training | after training |" in card
    assert "| stsb_dev | 86.72 | 86.87 |" in card and "| stsb_test | 82.03 |  |" in card
    assert "- Full configuration: [`declutr_config.yaml`](declutr_config.yaml)" in card and "name_or_path" not in card
    assert config_yaml(RECORD).startswith("model:\n  encoder:\n    name_or_path: x\n")


def test_model_card_of_a_model_not_trained_here():
    card = render_model_card(TrainingRecord(base_model="/models/local-bert"), "local-bert", dim=768, window=512)
    assert "A sentence encoder `local-bert`." in card and "/models" not in card
    assert "base_model:" not in card, "local paths are not hub names"
    assert "## Training" not in card and "## Evaluation" not in card and "declutr_config.yaml" not in card
    assert config_yaml(TrainingRecord(base_model="/models/local-bert")) is None


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
    assert "license: mit" in front and "language:\n- en\n" in front
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in front
    assert "model-index:" in front and "value: 55.5" in front and "value: 44.1" in front and "54.0" not in front
    assert "datasets" not in front, "a local corpus folder is no Hub dataset"
    # The installed distribution's version, as the card writes it: PyPI's CUDA wheel has torch.__version__
    # 2.13.0+cu130 for the distribution 2.13.0, so comparing with torch.__version__ failed on most users' builds.
    assert "## Framework versions" in card and f"torch {importlib.metadata.version('torch')}" in card
    assert "@inproceedings{giorgi-etal-2021-declutr" in card
    config = config_yaml(record)
    assert "name_or_path: sentence-transformers/all-MiniLM-L6-v2" in config
    assert "<data_dir>/corpus" in config and "./outputs/run" in config and "<local>/file.txt" in config
    assert str(tmp_path) not in card + config and "site-packages" not in card + config


TRAINED = replace(RECORD, corpus=["hf:Skylion007/openwebtext/train", "hf:/somewhere/local_dataset/train"],
                  seconds=3725.0, documents=12345, hardware="1 x NVIDIA H100 80GB HBM3 (CUDA 12.4), torch 2.5.1",
                  results={"before training": {"stsb_dev": 80.0, "stsb_test": 75.0},
                           "after training": {"stsb_dev": 86.87, "stsb_test": 84.1}},
                  losses=[{"step": s, "train/loss": 9 - s / 1000, "train/contrastive_loss": 2 - s / 10000,
                           "train/mlm_loss": 7 - s / 1000} for s in range(0, 1000, 111)])  # steps 0 ... 999


def test_model_card_metadata_is_what_the_hub_parses(tmp_path):
    """The front matter read back by huggingface_hub's own parsers (the Hub's validation needs the network): flat
    languages, Hub datasets only, a model-index of the final scores; the card stays short."""
    from huggingface_hub import ModelCard, ModelCardData, metadata_load
    from huggingface_hub.repocard_data import model_index_to_eval_results

    text = render_model_card(TRAINED, "model", dim=384, window=256, license="apache-2.0", language=["en", ["fr"]])
    (tmp_path / "README.md").write_text(text)
    metadata = metadata_load(tmp_path / "README.md")
    assert metadata["language"] == ["en", "fr"], "a flat list of codes"
    assert metadata["datasets"] == ["Skylion007/openwebtext"], "only the corpus read from the Hub"
    assert metadata["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and metadata["license"] == "apache-2.0"
    assert metadata["pipeline_tag"] == "sentence-similarity" and metadata["library_name"] == "sentence-transformers"
    assert set(metadata["tags"]) >= {"sentence-transformers", "sentence-similarity", "feature-extraction", "declutr"}
    name, results = model_index_to_eval_results(metadata["model-index"])
    assert name == "DeCLUTR all-MiniLM-L6-v2"
    assert [(r.dataset_name, r.dataset_split, r.metric_type, r.metric_value) for r in results] == [
        ("STS-B", "validation", "cosine_spearman", 86.87), ("STS-B", "test", "cosine_spearman", 84.1)]
    card = ModelCard(text)  # parses the same way, and round-trips through ModelCardData
    assert isinstance(card.data, ModelCardData) and card.data.eval_results[1].metric_value == 84.1
    assert ModelCardData(**card.data.to_dict()).to_dict() == card.data.to_dict()
    assert len(text.splitlines()) < 150
    for language in ("en,fr", ["en", "fr"]):
        assert metadata_load_text(render_model_card(TRAINED, "x", 8, 8, language=language))["language"] == ["en", "fr"]


def metadata_load_text(text: str) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard(text).data.to_dict()


def test_model_card_summarises_the_training_run():
    card = render_model_card(TRAINED, "my-encoder", dim=384, window=256)
    assert "- Optimizer steps: 250, on 12,345 documents, in 1 h 02 min\n" in card
    assert "- Hardware: 1 x NVIDIA H100 80GB HBM3 (CUDA 12.4), torch 2.5.1\n" in card
    assert "- Final losses: loss 8.0010, contrastive loss 1.9001, mlm loss 6.0010 (step 1000)" in card
    table = card.split("### Training losses")[1].split("##")[0].strip().splitlines()
    assert table[0] == "| step | loss | contrastive loss | mlm loss |" and len(table) == 2 + 10
    assert table[2] == "| 1 | 9.0000 | 2.0000 | 7.0000 |" and table[-1] == "| 1000 | 8.0010 | 1.9001 | 6.0010 |"
    assert "| stsb_test | 75.00 | 84.10 |" in card, "before and after training"
    assert "hf:<local>/train" in card and "/somewhere" not in card


def test_training_record_reads_losses_and_documents_from_the_run_s_csv_log(tmp_path):
    from omegaconf import OmegaConf

    for version, steps in ((0, range(0, 30)), (1, range(30, 50))):  # a resumed run: two versions
        folder = tmp_path / "csv" / f"version_{version}"
        folder.mkdir(parents=True)
        rows = ["step,train/loss,train/contrastive_loss,data/documents,before/stsb_dev", ",,,,50.0"]
        rows += [f"{s},{10 - s / 10},{3 - s / 100},{4 * (s + 1)}," for s in steps]
        (folder / "metrics.csv").write_text("\n".join(rows) + "\n")
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}, "trainer": {"accelerator": "cpu"},
                            "model": {"encoder": {"name_or_path": "x"}}, "data": {"files": ["a.txt"]}})
    record = training_record(cfg, 50, {"after training": {"stsb_dev": 51.0}}, seconds=12.5)
    assert record.steps == 50 and record.seconds == 12.5 and record.documents == 200
    assert record.hardware.startswith("CPU (") and f"torch {torch.__version__}" in record.hardware
    assert [row["step"] for row in record.losses] == [0, 5, 11, 16, 22, 27, 33, 38, 44, 49]
    assert record.losses[-1] == {"step": 49, "train/loss": 10 - 4.9, "train/contrastive_loss": 3 - 0.49}
    assert training_record(cfg, 50, {}, documents=7).documents == 7
    assert training_record(OmegaConf.merge(cfg, {"paths": {"output_dir": str(tmp_path / "nolog")}}), 50,
                           {}).losses == []


def test_records_of_older_and_newer_versions_load(tmp_path):
    (tmp_path / "declutr_training.json").write_text(json.dumps(
        {"base_model": "x", "random_init": False, "corpus": ["a"], "steps": 3, "config": None, "results": {}}))
    assert read_provenance(tmp_path) == TrainingRecord(base_model="x", corpus=["a"], steps=3)  # before seconds etc.
    (tmp_path / "declutr_training.json").write_text(json.dumps({"base_model": "x", "steps": 3, "from_the_future": 1}))
    assert read_provenance(tmp_path) == TrainingRecord(base_model="x", steps=3)


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


def hub_failures() -> dict:
    """huggingface_hub's own exceptions, as ``HfApi`` raises them for each way an upload fails."""
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub import errors

    def http(cls, status):
        response = httpx2.Response(status, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))
        return cls(f"{status} Client Error for url: https://huggingface.co/api/repos/create", response=response,
                   server_message={401: "Invalid username or password.", 403: "You don't have the rights to create a "
                                   "model under the namespace \"them\""}.get(status))

    return {
        "offline": (errors.OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode "
                                                "is enabled."), DeclutrRunError, r"offline mode is on \(HF_HUB_OFFLINE"
                                                r"=1\)\. Unset HF_HUB_OFFLINE"),
        "no network": (httpx2.ConnectError("[Errno -2] Name or service not known"), DeclutrRunError,
                       r"Cannot reach the Hugging Face Hub \(ConnectError: .*Name or service not known\): check the "
                       "network"),
        "timeout": (httpx2.ReadTimeout("The read operation timed out"), DeclutrRunError,
                    "Cannot reach the Hugging Face Hub .*ReadTimeout"),
        "no token": (errors.LocalTokenNotFoundError("Token is required (`token=True`), but no token found."),
                     DeclutrConfigError, r"no token\. Log in with `hf auth login` \(or set HF_TOKEN"),
        "bad token": (http(errors.HfHubHTTPError, 401), DeclutrConfigError,
                      r"no valid token \(401: Invalid username or password\.\)\. Log in with `hf auth login`"),
        "no permission": (http(errors.HfHubHTTPError, 403), DeclutrConfigError,
                          r"your token has no write permission there \(403: You don't have the rights"),
        "no such repo": (http(errors.RepositoryNotFoundError, 404), DeclutrConfigError,
                         "does not exist or your token cannot see it"),
        "bad repo id": (errors.HFValidationError("Repo id must use alphanumeric chars, '-', '_' or '.'."),
                        DeclutrConfigError, r"is not a valid Hub repo id \(Repo id must use"),
        "hub down": (http(errors.HfHubHTTPError, 503), DeclutrRunError, r"failed the upload to me/declutr-tiny "
                                                                         r"\(503: .*try again later"),
    }


class FailingHub(StandInHub):
    """A Hub whose ``create_repo`` (or, with ``at_upload``, ``upload_folder``) raises ``error``."""

    def __init__(self, error, at_upload=False):
        super().__init__()
        self.error, self.at_upload = error, at_upload

    def create_repo(self, *args, **kwargs):
        if not self.at_upload:
            raise self.error
        super().create_repo(*args, **kwargs)

    def upload_folder(self, **kwargs):
        raise self.error


@pytest.mark.parametrize("failure", list(hub_failures()))
def test_a_failed_upload_ends_in_one_line_that_says_what_to_do(failure, tmp_path):
    error, expected, message = hub_failures()[failure]
    for hub in (FailingHub(error), FailingHub(error, at_upload=True)):
        with pytest.raises(expected, match=message) as raised:
            push_to_hub(tmp_path, "me/declutr-tiny", api=hub)
        text = str(raised.value)
        assert "\n" not in text and raised.value.__cause__ is None and raised.value.__suppress_context__
        if failure != "bad repo id":
            assert f"The export is saved in {tmp_path}; upload it later with `hf upload me/declutr-tiny " in text


def test_an_error_that_is_not_the_hub_s_is_raised_as_it_is(tmp_path):
    with pytest.raises(KeyError):
        push_to_hub(tmp_path, "me/declutr-tiny", api=FailingHub(KeyError("a bug")))


def test_a_real_upload_with_the_hub_offline_or_unreachable_ends_in_one_line(tmp_path, monkeypatch):
    """Through the real ``HfApi``: offline mode (HF_HUB_OFFLINE=1), then a Hub endpoint that refuses connections."""
    from huggingface_hub import HfApi, constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once, at import
    with pytest.raises(DeclutrRunError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\)") as raised:
        push_to_hub(tmp_path, "me/declutr-tiny")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(DeclutrRunError, match=r"Cannot reach the Hugging Face Hub \(ConnectError: .*refused"):
        push_to_hub(tmp_path, "me/declutr-tiny", api=HfApi(endpoint="http://127.0.0.1:9", token="hf_not_a_token"))
    with pytest.raises(DeclutrConfigError, match=r"export.hub_model_id='me/not ok!' is not a valid Hub repo id"):
        push_to_hub(tmp_path, "me/not ok!")  # refused before any request


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
