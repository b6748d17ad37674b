"""task=embed: .txt/.jsonl in, .npy/.parquet out, streamed in blocks, row i = text i; clear errors."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from declutr import Encoder
from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.tasks import embed
from declutr.tasks.embed import run

TEXTS = ["A man is playing a guitar.", "", "The stock market fell sharply on Monday after weak earnings reports.",
         "Hi", "Two dogs run across a snowy field while their owner watches from the porch.", "A woman slices onions."]
MODEL = f"embed.model={_minilm_path()}"


@pytest.fixture(scope="module")
def encoder():
    return Encoder(_minilm_path(), device="cpu")


@pytest.fixture(scope="module")
def expected(encoder):
    return encoder.encode(TEXTS)


def test_txt_to_npy_in_blocks_keeps_every_line_in_order(make_config, tmp_path, expected):
    source, output = tmp_path / "texts.txt", tmp_path / "out" / "vectors.npy"
    source.write_text("\n".join(TEXTS) + "\n")  # line 2 is empty: it still gets a row
    result = run(make_config("task=embed", MODEL, f"embed.input={source}", f"embed.output={output}",
                             "embed.block_size=4", "embed.progress=false"))
    assert result["count"] == len(TEXTS) and result["dim"] == 384
    np.testing.assert_allclose(np.load(output), expected, atol=1e-5)
    assert sorted(p.name for p in output.parent.iterdir()) == ["vectors.npy"], "no temporary file is left behind"


def test_txt_lines_end_at_newline_only_so_row_i_is_line_i(make_config, tmp_path, encoder):
    # every character str.splitlines (or text mode's universal newlines) breaks at, kept inside its line
    lines = ["A man is\rplaying a guitar.", "Line\u2028separated\u2029text.", "", "Form\x0cfeed, \x0bvertical tab,",
             "group\x1d record\x1e file\x1c separators and a next\x85line.", "Windows ending.", "Last line."]
    source, output = tmp_path / "texts.txt", tmp_path / "vectors.npy"
    endings = ["\n", "\r\n", "\n", "\r\n", "\n", "\r\n", "\r\n"]  # a final line ending adds no row
    source.write_bytes("".join(line + end for line, end in zip(lines, endings)).encode())
    result = run(make_config("task=embed", MODEL, f"embed.input={source}", f"embed.output={output}",
                             "embed.block_size=3", "embed.progress=false"))
    vectors = np.load(output)
    assert result["count"] == len(vectors) == len(lines)
    np.testing.assert_allclose(vectors[0], encoder.encode(["A man is\rplaying a guitar."])[0], atol=1e-5)
    np.testing.assert_allclose(vectors, encoder.encode(lines), atol=1e-5)  # no row shifted


def test_a_bad_utf8_byte_names_its_line_and_column_before_the_model_loads(make_config, tmp_path, monkeypatch):
    source = tmp_path / "texts.txt"
    # line 2 starts with a lone \r (no line break); line 3 is UTF-8 "né " then Latin-1 "café au lait"
    source.write_bytes("fine\n\rété\nné ".encode() + "café au lait\n".encode("latin-1"))
    monkeypatch.setattr(embed, "Encoder", lambda *a, **k: pytest.fail("the model loaded before the input was read"))
    with pytest.raises(DeclutrConfigError) as raised:
        run(make_config("task=embed", MODEL, f"embed.input={source}", f"embed.output={tmp_path / 'vectors.npy'}"))
    assert str(raised.value) == (
        f"{source} is not UTF-8: line 3, column 7 (character; byte 8 of the line) is 0xe9 (invalid continuation "
        "byte). Re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 texts.txt > texts.utf8.txt`.")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__, "run.py prints one line, no traceback"
    assert not (tmp_path / "vectors.npy").exists()


def test_jsonl_to_parquet_with_a_text_field_and_normalisation(make_config, tmp_path, expected):
    source, output = tmp_path / "texts.jsonl", tmp_path / "vectors.parquet"
    source.write_text("\n\n".join(json.dumps({"id": i, "body": t}) for i, t in enumerate(TEXTS)))  # blank lines skipped
    run(make_config("task=embed", MODEL, f"embed.input={source}", f"embed.output={output}", "embed.text_field=body",
                    "embed.block_size=4", "embed.normalize=true", "embed.progress=false"))
    table = pq.read_table(output)
    assert table.column_names == ["embedding"] and table.num_rows == len(TEXTS)
    vectors = np.array(table.column("embedding").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_bfloat16_precision_gives_float32_vectors_close_to_float32_ones(make_config, tmp_path, expected):
    source, output = tmp_path / "texts.txt", tmp_path / "vectors.npy"
    source.write_text("\n".join(TEXTS) + "\n")
    result = run(make_config("task=embed", MODEL, f"embed.input={source}", f"embed.output={output}",
                             "embed.precision=bfloat16", "embed.progress=false"))
    vectors = np.load(output)
    assert result["precision"] == "bfloat16" and vectors.dtype == np.float32
    cosine = Encoder.similarity(vectors, expected).diagonal()
    assert cosine.min() > 0.99 and np.abs(vectors - expected).max() > 0, "autocast ran, and changed little"


@pytest.mark.parametrize(
    "content, overrides, message",
    [
        ('{"text": "fine"}\n{"text": broken\n', [], r"texts.jsonl:2 is not valid JSON"),
        ('{"text": "fine"}\n{"body": "elsewhere"}\n', [], r"texts.jsonl:2 has no text in field 'text': set embed.text_field"),
        ('{"text": "fine"}\n', ["embed.output={tmp}/vectors.csv"], r"unknown format '.csv'; use .npy or .parquet"),
        ('{"text": "fine"}\n', ["embed.output={tmp}/taken.npy"], r"taken.npy already exists: set embed.overwrite=true"),
        ('{"text": "fine"}\n', ["embed.input={tmp}/missing.txt"], r"missing.txt is not a file"),
        ('{"text": "fine"}\n', ["embed.model=null"], r"task=embed needs embed.model="),
    ],
)
def test_bad_inputs_fail_before_any_work_naming_the_fix(make_config, tmp_path, content, overrides, message):
    (tmp_path / "texts.jsonl").write_text(content)
    (tmp_path / "taken.npy").write_bytes(b"someone else's file")
    cfg = make_config("task=embed", MODEL, f"embed.input={tmp_path / 'texts.jsonl'}",
                      f"embed.output={tmp_path / 'vectors.npy'}", *(o.format(tmp=tmp_path) for o in overrides))
    with pytest.raises(DeclutrConfigError, match=message):
        run(cfg)
    assert not (tmp_path / "vectors.npy").exists() and (tmp_path / "taken.npy").read_bytes() == b"someone else's file"

