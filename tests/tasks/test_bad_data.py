"""A corpus folder with every kind of broken file trains to completion, with the right skip counts."""

import gzip
import json
import random

from declutr.tasks.train import run
from tests.helpers.paths import STATE_UNION


def broken_corpus(folder):
    folder.mkdir()
    good = sorted(p for p in STATE_UNION.glob("19[4-6]*.txt") if "1954" not in p.name)[:6]  # UTF-8 files
    for path in good:
        (folder / path.name).write_text(path.read_text())
    (folder / "binary.txt").write_bytes(bytes(random.Random(0).randrange(256) for _ in range(5000)))
    (folder / "latin1.txt").write_bytes("Caf\xe9 society, na\xefve r\xe9sum\xe9s. ".encode("latin-1") * 200)
    (folder / "empty.txt").write_text("\n \n")
    long_text = (STATE_UNION / "1961-Kennedy.txt").read_text()
    lines = [json.dumps({"text": long_text}), "{cut off", json.dumps({"title": "no text"}), json.dumps({"text": ""}),
             json.dumps({"text": "far too short"})]
    (folder / "records.jsonl").write_text("\n".join(lines) + '\n{"text": "truncated')
    with gzip.open(folder / "cut.jsonl.gz", "wt") as handle:
        for _ in range(50):
            handle.write(json.dumps({"text": long_text}) + "\n")
    data = (folder / "cut.jsonl.gz").read_bytes()
    (folder / "cut.jsonl.gz").write_bytes(data[: len(data) // 3])
    return len(good)


def test_broken_files_are_skipped_and_counted_and_training_completes(make_config, tmp_path):
    num_good = broken_corpus(tmp_path / "corpus")
    cfg = make_config("model=tiny", f"data.files=[{tmp_path / 'corpus'}]", "evaluate.enabled=false", "callbacks=none",
                      "data.batch_size=2", "data.num_workers=2", "trainer.max_steps=1000", "trainer.max_epochs=1",
                      "data.max_bad_fraction=0.9")
    result = run(cfg)
    skipped = result["skipped"]
    assert skipped["not_utf8"] == 2  # binary.txt and latin1.txt
    assert skipped["empty"] == 2  # empty.txt, and the record with an empty text
    assert skipped["malformed_json"] == 2  # "{cut off" and the truncated last line
    assert skipped["missing_text_field"] == 1
    assert skipped["too_short"] == 1  # "far too short"
    assert skipped["unreadable_file:EOFError"] == 1  # the gzip cut short, counted once across 2 workers
    # every readable long document was trained on: the good files, the good record, and what the cut gzip gave
    assert result["documents"] >= num_good + 1 + 1
