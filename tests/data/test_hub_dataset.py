"""data.hf_dataset: a dataset by name, streamed row by row (tested on a local dataset folder: the hub is
unreachable here), sharded like files, with clear errors for a name that cannot be read or a missing column."""

from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from declutr.data.hub_dataset import HubDataset
from declutr.errors import DeclutrConfigError
from tests.helpers.paths import STATE_UNION


@pytest.fixture(scope="module")
def local_dataset(tmp_path_factory):
    """A dataset folder as the hub serves them: a data/ folder of Parquet files with a train split."""
    root = tmp_path_factory.mktemp("dataset")
    texts = [f.read_text(encoding="utf-8", errors="replace").strip() for f in sorted(STATE_UNION.glob("*.txt"))[:12]]
    (root / "data").mkdir()
    pq.write_table(pa.table({"text": texts[:6], "year": list(range(6))}), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(pa.table({"text": texts[6:], "year": list(range(6))}), root / "data" / "train-00001-of-00002.parquet")
    return root, texts


def test_rows_stream_in_order_and_split_between_readers(local_dataset):
    root, texts = local_dataset
    hub = HubDataset(str(root), "train")
    hub.check()
    docs = list(hub.documents(Counter(), lambda: True))
    assert [text for _, text in docs] == texts and docs[0][0] == f"hf:{root}/train:1"
    owned = []
    for shard in range(2):
        turn = iter(range(1000))
        keep = lambda shard=shard, turn=turn: next(turn) % 2 == shard  # noqa: E731 (the stream's round robin)
        owned.append([key for key, _ in hub.documents(Counter(), keep)])
    assert sorted(owned[0] + owned[1]) == sorted(key for key, _ in docs) and len(owned[0]) == 6


def test_a_missing_column_and_an_unreachable_name_say_what_to_do(local_dataset):
    root, _ = local_dataset
    with pytest.raises(DeclutrConfigError, match=r"no column data.text_field='body'; its columns are \['text', 'year'\]"):
        HubDataset(str(root), "train", text_field="body").check()
    with pytest.raises(DeclutrConfigError, match=r"cannot be read here .*save_to_disk\(<folder>\)` and set data.files"):
        HubDataset("someone/not-a-dataset-here", "train").check()


def test_training_streams_a_dataset_by_name(make_config, local_dataset):
    from declutr.tasks.train import run
    from tests.helpers.runs import FAST

    root, _ = local_dataset
    cfg = make_config(*FAST, f"data.hf_dataset={root}", "callbacks=none", "evaluate.enabled=false",
                      "trainer.max_steps=2", "data.num_workers=0", "log_documents=false", "data.batch_size=2")
    assert run(cfg)["steps"] == 2
