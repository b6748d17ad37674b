"""Round trips: train tiny -> export -> our Encoder, AutoModel + mean pooling and SentenceTransformer agree."""

import shutil

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, AutoTokenizer

from declutr import Encoder
from declutr.errors import DeclutrConfigError
from declutr.tasks import export, train
from tests.helpers.configs import compose_config
from tests.helpers.paths import DATA_DIR, ROOT, STATE_UNION

SENTENCES = ["A man is playing a guitar.", "", "The stock market fell sharply on Monday after weak earnings reports.",
             "Hi", "Two dogs run across a snowy field while their owner watches from the porch."]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real 4-step training run of the tiny model, with STS-B dev before and after and a checkpoint at step 4."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    cfg = compose_config(["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "debug=fast",
                          "callbacks.stsb_dev.every_n_steps=4", "callbacks.stsb_dev.max_examples=100",
                          "data.num_workers=0", "logger=none"], run_dir)
    train.run(cfg)
    GlobalHydra.instance().clear()
    return run_dir


def auto_model_mean_pool(folder, texts) -> np.ndarray:
    """What the model card tells Transformers users to do, written out independently of our code."""
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return ((hidden * mask).sum(1) / mask.sum(1)).numpy()


def assert_all_loaders_agree(folder, reference: np.ndarray) -> None:
    st = SentenceTransformer(str(folder), device="cpu")
    assert st.max_seq_length == 512
    for vectors in (Encoder(folder, device="cpu").encode(SENTENCES, batch_size=2), auto_model_mean_pool(folder, SENTENCES),
                    st.encode(SENTENCES, batch_size=2, convert_to_numpy=True)):
        np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_training_ends_with_a_folder_every_loader_reads_identically(tiny_run):
    model_dir = tiny_run / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "modules.json", "sentence_bert_config.json",
                 "config_sentence_transformers.json", "1_Pooling/config.json", "README.md", "declutr_training.json",
                 "declutr_config.yaml"):
        assert (model_dir / name).is_file(), name
    reference = Encoder(tiny_run, device="cpu").encode(SENTENCES)  # the run folder resolves to its model/
    assert reference.shape == (len(SENTENCES), 32)
    assert_all_loaders_agree(model_dir, reference)
    card = (model_dir / "README.md").read_text()
    assert "library_name: sentence-transformers" in card
    assert "`sentence-transformers/all-MiniLM-L6-v2` (its architecture only, from random weights)" in card  # base model
    assert "site-packages" not in card
    assert "Corpus: `<data_dir>/corpus/nltk_state_union/state_union`" in card and "Optimizer steps: 4" in card
    for path in model_dir.rglob("*"):  # no local absolute path anywhere in the folder
        if path.suffix in (".md", ".json", ".txt", ".yaml"):
            text = path.read_text()
            assert str(DATA_DIR) not in text and str(ROOT) not in text and "site-packages" not in text, path
    assert "| metric | before training | after training |" in card and "| stsb_dev |" in card
    assert "[`declutr_config.yaml`](declutr_config.yaml)" in card and "CPU (" in card  # the config, the hardware
    assert "max_span_len: 128" in (model_dir / "declutr_config.yaml").read_text()


def test_export_task_from_a_checkpoint_round_trips(tiny_run, make_config, tmp_path):
    checkpoint = tiny_run / "checkpoints" / "last.ckpt"
    target = tmp_path / "exported"
    result = export.run(make_config("task=export", f"export.model={checkpoint}", f"export.output={target}"))
    assert result["output"] == str(target)
    reference = Encoder(checkpoint, device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(reference, Encoder(tiny_run, device="cpu").encode(SENTENCES), atol=1e-5)
    assert_all_loaders_agree(target, reference)
    card = (target / "README.md").read_text()
    assert "Optimizer steps: 4" in card  # from the checkpoint, the config from its run
    assert "max_span_len: 128" in (target / "declutr_config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported"], "no temporary folder is left behind"


def test_export_task_of_a_run_folder_keeps_the_training_card(tiny_run, make_config, tmp_path):
    export.run(make_config("task=export", f"export.model={tiny_run}", f"export.output={tmp_path / 'again'}"))
    trained_card = (tiny_run / "model" / "README.md").read_text()
    assert (tmp_path / "again" / "README.md").read_text() == trained_card.replace("DeCLUTR all-MiniLM-L6-v2", "again")
    config = (tiny_run / "model" / "declutr_config.yaml").read_text()
    assert (tmp_path / "again" / "declutr_config.yaml").read_text() == config


def test_truncated_checkpoint_gives_a_clear_error_and_no_output(tiny_run, make_config, tmp_path):
    data = (tiny_run / "checkpoints" / "last.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(data[: len(data) // 2])
    message = r"Cannot read checkpoint .*cut\.ckpt .*corrupt or cut short.*last\.ckpt"
    with pytest.raises(DeclutrConfigError, match=message):
        Encoder(cut, device="cpu")
    with pytest.raises(DeclutrConfigError, match=message):
        export.run(make_config("task=export", f"export.model={cut}", f"export.output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()


def test_run_folder_without_model_points_to_its_checkpoint(tiny_run, tmp_path):
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(tiny_run / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "last.ckpt")
    with pytest.raises(DeclutrConfigError, match=r"holds no model \(its checkpoint .*last\.ckpt can be passed instead\)"):
        Encoder(tmp_path, device="cpu")


def test_export_needs_a_model(make_config):
    with pytest.raises(DeclutrConfigError, match="task=export needs export.model="):
        export.run(make_config("task=export"))


def test_the_same_calls_on_sentence_transformers_and_encoder_give_the_same_results(tiny_run):
    """Code written for SentenceTransformer runs unchanged on an Encoder of the same folder."""
    model_dir = tiny_run / "model"
    ours, theirs = Encoder(model_dir, device="cpu"), SentenceTransformer(str(model_dir), device="cpu")
    for kwargs in ({}, {"batch_size": 2, "normalize_embeddings": True}, {"convert_to_tensor": True},
                   {"convert_to_numpy": True, "show_progress_bar": False}):
        a, b = ours.encode(SENTENCES, **kwargs), theirs.encode(SENTENCES, **kwargs)
        assert type(a) is type(b) and a.shape == b.shape, kwargs
        np.testing.assert_allclose(np.asarray(a), np.asarray(b.cpu() if torch.is_tensor(b) else b), atol=1e-5)
    vectors = ours.encode(SENTENCES)
    np.testing.assert_allclose(ours.similarity(vectors, vectors[:2]), theirs.similarity(vectors, vectors[:2]),
                               atol=1e-5)
