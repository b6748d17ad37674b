"""task=prepare: writes the corpus once, refuses to mix settings, and its output trains."""

import json
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from declutr.config.instantiate import build
from declutr.data.token_shards import TokenShard
from declutr.errors import DeclutrConfigError
from declutr.tasks import prepare, train
from declutr.tokenizer import load_tokenizer
from tests.helpers.paths import STATE_UNION


def test_prepare_is_idempotent_and_guards_its_settings(make_config, raw_corpus, tmp_path, capsys):
    out = tmp_path / "prepared"
    overrides = ["task=prepare", "model=tiny", f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={out}"]
    result = prepare.run(make_config(*overrides))
    assert result["documents"] > 0 and (out / "manifest.json").is_file()
    printed = capsys.readouterr()
    assert "kept" in printed.out
    assert "Preparing" in printed.err and f"kept {result['documents']:,}" in printed.err and "tokens/s" in printed.err
    assert len(list(out.glob("*.ids.bin"))) == len(list(out.glob("*.offsets.npy"))) == len(list(out.glob("*.jsonl.gz")))
    prepare.run(make_config(*overrides))
    assert "already prepared" in capsys.readouterr().out
    with pytest.raises(DeclutrConfigError, match="prepare.overwrite=true"):
        prepare.run(make_config(*overrides, "prepare.min_tokens=100"))
    redone = prepare.run(make_config(*overrides, "prepare.min_tokens=100", "prepare.overwrite=true"))
    assert redone["documents"] >= result["documents"]


def test_one_tokenizer_folder_spelt_another_way_is_the_same_setting(make_config, raw_corpus, tmp_path, capsys):
    out = tmp_path / "prepared"
    overrides = ["task=prepare", "model=tiny", f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={out}"]
    folder = Path(make_config(*overrides).model.encoder.name_or_path).resolve()
    link = tmp_path / "tokenizer_link"
    link.symlink_to(folder, target_is_directory=True)
    prepare.run(make_config(*overrides, f"model.encoder.name_or_path={folder}"))
    capsys.readouterr()
    relative = os.path.relpath(link)  # relative to the folder run.py runs from, through a link: the same folder
    prepare.run(make_config(*overrides, f"model.encoder.name_or_path={relative}"))
    assert "already prepared" in capsys.readouterr().out
    other = tmp_path / "another_tokenizer"  # a second folder is another setting, even with the same files
    shutil.copytree(folder, other, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.onnx", "onnx", "openvino"))
    with pytest.raises(DeclutrConfigError, match="other settings"):
        prepare.run(make_config(*overrides, f"model.encoder.name_or_path={other}"))


def test_token_ids_are_added_to_a_corpus_prepared_without_them(make_config, raw_corpus, tmp_path, capsys):
    out = tmp_path / "prepared"
    overrides = ["task=prepare", "model=tiny", f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={out}"]
    prepare.run(make_config(*overrides, "prepare.token_ids=false"))
    assert not list(out.glob("*.ids.bin"))
    capsys.readouterr()
    prepare.run(make_config(*overrides))  # the text shards stay; only their ids are written
    assert "wrote its token-id shards" in capsys.readouterr().out and list(out.glob("*.ids.bin"))
    prepare.run(make_config(*overrides))
    assert "already prepared" in capsys.readouterr().out
    prepare.run(make_config(*overrides, "prepare.token_ids=false", "prepare.overwrite=true"))
    assert not list(out.glob("*.ids.bin")) and not list(out.glob("*.offsets.npy")) and list(out.glob("*.jsonl.gz"))


def test_prepared_corpus_feeds_training(make_config, raw_corpus, tmp_path):
    out = tmp_path / "prepared"
    prepare.run(make_config("task=prepare", "model=tiny", f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={out}"))
    cfg = make_config("model=tiny", "debug=fast", "callbacks=none", "evaluate.enabled=false", f"paths.prepared_dir={out}")
    datamodule = build(cfg.data, tokenizer=load_tokenizer(cfg.model.encoder.name_or_path))
    assert all(isinstance(source, TokenShard) for source in datamodule.sources), "training reads the token ids"
    result = train.run(cfg)
    assert (tmp_path / "run" / "model" / "config.json").is_file() and result["model_dir"]


def test_prepare_a_dataset_by_name_in_two_processes(make_config, tmp_path):
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted(STATE_UNION.glob("*.txt"))[:10]]
    (tmp_path / "dataset" / "data").mkdir(parents=True)
    pq.write_table(pa.table({"text": texts}), tmp_path / "dataset" / "data" / "train-00000-of-00001.parquet")
    out = tmp_path / "prepared"
    result = prepare.run(make_config("task=prepare", "model=tiny", f"prepare.hf_dataset={tmp_path / 'dataset'}",
                                     f"prepare.output_dir={out}", "prepare.num_proc=2", "prepare.min_tokens=100"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert result["documents"] == manifest["documents"] == 10 and manifest["kept"] == {f"hf:{tmp_path / 'dataset'}": 10}
    assert manifest["settings"]["corpus_dir"] == f"hf:{tmp_path / 'dataset'}/train" and manifest["token_ids"]
