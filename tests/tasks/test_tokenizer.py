"""task=tokenizer: a vocabulary for the corpus, cached by its settings, that a corpus is prepared with and a fresh
encoder trains with."""

import gzip
import json
import shutil

import pytest

from declutr.errors import DeclutrConfigError
from declutr.tasks import prepare, tokenizer, train
from declutr.tasks.tokenizer import STATS
from declutr.tokenizer import load_tokenizer


@pytest.mark.slow  # two prepares (process pools) and a training run
def test_a_vocabulary_made_for_the_corpus_prepares_it_and_trains_a_fresh_encoder(make_config, raw_corpus, tmp_path,
                                                                                 capsys):
    corpus, vocab = tmp_path / "corpus", tmp_path / "wp"
    prepare.run(make_config("task=prepare", "model=tiny", f"prepare.corpus_dir={raw_corpus}",
                            f"prepare.output_dir={corpus}", "prepare.min_tokens=300"))
    made = ["task=tokenizer", f"tokenizer.corpus_dir={corpus}", f"tokenizer.output_dir={vocab}",
            "tokenizer.vocab_size=700"]
    stats = tokenizer.run(make_config(*made))
    assert stats["vocab_size"] == len(load_tokenizer(vocab)) <= 700 and stats["tokens"] > 10_000
    assert 3.0 < stats["unigram_entropy"] < 6.55  # below log(700): Zipf-like, not uniform
    assert json.loads((vocab / STATS).read_text())["unigram_entropy"] == stats["unigram_entropy"]
    capsys.readouterr()
    assert tokenizer.run(make_config(*made))["unigram_entropy"] == stats["unigram_entropy"]
    assert "already in" in capsys.readouterr().out  # cached: the same settings are not trained again
    with pytest.raises(DeclutrConfigError, match="tokenizer.overwrite=true"):
        tokenizer.run(make_config(*made[:-1], "tokenizer.vocab_size=500"))

    own = ["model=tiny", f"model.encoder.name_or_path={vocab}"]
    prepared = tmp_path / "corpus_wp"
    prepare.run(make_config("task=prepare", *own, f"prepare.corpus_dir={raw_corpus}", f"prepare.output_dir={prepared}",
                            "prepare.min_tokens=300"))
    run = make_config(*own, "debug=fast", "callbacks=none", "evaluate.enabled=false", f"data.files=[{prepared}]",
                      "data.sampler.max_span_len=64", "data.sampler.min_span_len=16")
    result = train.run(run)
    assert result["steps"] == 4 and load_tokenizer(result["model_dir"]).get_vocab() == load_tokenizer(vocab).get_vocab()
    with pytest.raises(DeclutrConfigError, match="made by the tokenizer"):  # the MiniLM-prepared corpus
        train.run(make_config(*own, "debug=fast", "callbacks=none", "evaluate.enabled=false", f"data.files=[{corpus}]"))


def test_a_folder_that_is_not_a_prepared_corpus_is_refused(make_config, tmp_path):
    with pytest.raises(DeclutrConfigError, match=r"tokenizer.corpus_dir=.* is not a prepared corpus.*task=prepare"):
        tokenizer.run(make_config("task=tokenizer", f"tokenizer.corpus_dir={tmp_path}"))


def test_a_damaged_text_shard_is_refused_not_skipped(make_config, prepared_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(prepared_corpus, corpus)
    shard = sorted(corpus.glob("shard-*.jsonl.gz"))[3]
    shard.write_bytes(gzip.compress(b'{"text": "a whole document"}\n{"text": "cut off in the mid'))
    with pytest.raises(DeclutrConfigError, match=f"Text shard {shard} is unreadable.*prepare.overwrite=true"):
        tokenizer.run(make_config("task=tokenizer", f"tokenizer.corpus_dir={corpus}",
                                  f"tokenizer.output_dir={tmp_path / 'wp'}", "tokenizer.vocab_size=500"))
    assert not (tmp_path / "wp" / STATS).exists()
