"""The exported folder's ``README.md``: what the model is, how to load it, how it trained (steps, documents, time,
hardware, losses) and scored, with the Hugging Face Hub's metadata (built with ``huggingface_hub.ModelCardData``:
base model, license, languages, Hub datasets, tags, a model-index of the scores) and the paper's citation. The full
config goes beside it, to ``declutr_config.yaml`` (:func:`config_yaml`), which the card links.
Local paths never reach the card: a base model installed locally is named by its hub name when known, and the
config shows paths relative to the project, the data folder or the home folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from huggingface_hub import EvalResult, ModelCardData
from omegaconf import OmegaConf

from declutr.config.resolvers import OFFLINE_MODELS
from declutr.export.provenance import LOSSES, TrainingRecord
from declutr.model.huggingface import looks_local_path

CONFIG_FILE = "declutr_config.yaml"  # the full config of the run, beside the card
TAGS = ["sentence-transformers", "sentence-similarity", "feature-extraction", "declutr"]
CITATION = """@inproceedings{giorgi-etal-2021-declutr,
    title = "{D}e{CLUTR}: Deep Contrastive Learning for Unsupervised Textual Representations",
    author = "Giorgi, John and Nitski, Osvald and Wang, Bo and Bader, Gary",
    booktitle = "Proceedings of the 59th Annual Meeting of the Association for Computational Linguistics and the 11th
                 International Joint Conference on Natural Language Processing (Volume 1: Long Papers)",
    year = "2021",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2021.acl-long.72",
    pages = "879--895",
}"""
# Evaluations the card's model-index knows: results.json key -> (dataset name, split).
INDEXED = {"stsb_dev": ("STS-B", "validation"), "stsb_test": ("STS-B", "test")}


def render_model_card(record: TrainingRecord, name: str, dim: int, window: int, license: str = "apache-2.0",
                      language: str | Sequence[str] = "en") -> str:
    """Markdown with Hugging Face metadata front matter, for a ``dim``-wide encoder truncating at ``window`` tokens.
    ``name`` titles the card; the folder name ``model`` that training writes gives a title from the base model.
    ``language``: one code, several (a list, or comma-separated)."""
    record = portable_record(record)
    title = name if name != "model" else f"DeCLUTR {hub_name(record.base_model).split('/')[-1]}"
    body = [f"# {title}\n\n{_summary(record, dim, window)}", _usage(window), _training(record), _losses(record),
            _evaluation(record), _versions(), _citation()]
    data = card_data(record, title, license, language)
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(s for s in body if s) + "\n"


def config_yaml(record: TrainingRecord) -> str | None:
    """The full config of the run as YAML (local paths rewritten, see :func:`portable_record`), for ``CONFIG_FILE``;
    ``None`` for a model not trained here."""
    if record.config is None:
        return None
    return OmegaConf.to_yaml(OmegaConf.create(portable_record(record).config))


def card_data(record: TrainingRecord, title: str, license: str = "apache-2.0",
              language: str | Sequence[str] = "en") -> ModelCardData:
    """The card's Hub metadata. ``base_model`` only for a hub name the encoder was trained from; ``datasets`` only for
    a corpus read from the Hub (``data.hf_dataset`` naming a Hub dataset, not a local folder)."""
    base = hub_name(record.base_model)
    return ModelCardData(language=languages(language), license=license, library_name="sentence-transformers",
                         pipeline_tag="sentence-similarity", tags=list(TAGS),
                         base_model=base if not record.random_init and "/" in base else None,
                         datasets=hub_datasets(record.corpus) or None, model_name=title,
                         eval_results=_eval_results(record) or None)


def languages(language) -> list[str]:
    """A flat list of language codes from one code, a comma-separated string or a (nested) list of them."""
    if isinstance(language, str):
        return [part.strip() for part in language.split(",") if part.strip()]
    if language is None:
        return []
    return [code for item in language for code in languages(item)]


def hub_datasets(corpus: Sequence[str]) -> list[str]:
    """The Hub datasets among a record's corpus entries (``hf:<name>/<split>``, :mod:`declutr.data.hub_dataset`):
    names that are neither a local path nor a local folder."""
    names = [entry[3:].rsplit("/", 1)[0] for entry in corpus if str(entry).startswith("hf:")]
    return sorted({name for name in names if name and not name.startswith("<") and not looks_local_path(name)
                   and not Path(name).exists()})


def hub_name(name_or_path: str) -> str:
    """The Hugging Face Hub name of a model: itself when it is one, the hub name of a model this project installs
    offline (``${minilm_path:}`` is ``sentence-transformers/all-MiniLM-L6-v2``), else the folder's name. (A folder's
    ``config.json`` records the model it was trained *from*, not itself, so it is not read.)"""
    path = Path(name_or_path)
    if not path.exists() and not looks_local_path(name_or_path):
        return name_or_path
    return OFFLINE_MODELS.get(str(path.resolve()), path.name)


def _eval_results(record: TrainingRecord) -> list[EvalResult]:
    """The Hub's model-index: the final scores this project measured (Spearman x 100)."""
    final = record.results.get("after training") or {}
    return [EvalResult(task_type="sentence-similarity", task_name="Semantic Textual Similarity",
                       dataset_type="mteb/stsbenchmark-sts", dataset_name=INDEXED[key][0],
                       dataset_split=INDEXED[key][1], metric_type="cosine_spearman", metric_value=round(value, 2),
                       metric_name=f"Spearman x 100 ({INDEXED[key][1]})")
            for key, value in final.items() if key in INDEXED and value is not None]


def _base(record: TrainingRecord) -> str:
    return f"`{hub_name(record.base_model)}`" + (" (its architecture only, from random weights)" if record.random_init
                                                 else "")


def _summary(record: TrainingRecord, dim: int, window: int) -> str:
    trained = (f"trained with DeCLUTR (Giorgi et al., ACL 2021: contrastive span sampling + masked language "
               f"modelling) from {_base(record)}") if record.steps is not None or record.config else f"{_base(record)}"
    return (f"A sentence encoder {trained}. Sentence embeddings are the mean of the last hidden layer over the "
            f"non-padding tokens (special tokens included): {dim} dimensions, texts truncated at {window} tokens.")


def _usage(window: int) -> str:
    return f"""## Usage

This folder is both a sentence-transformers model and a plain Hugging Face model; all three give the same vectors.

```python
from sentence_transformers import SentenceTransformer
embeddings = SentenceTransformer("path/to/this/folder").encode(["A sentence.", "Another one."])
```

```python
import torch
from transformers import AutoModel, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")
model = AutoModel.from_pretrained("path/to/this/folder").eval()
batch = tokenizer(["A sentence.", "Another one."], padding=True, truncation=True, max_length={window}, return_tensors="pt")
with torch.no_grad():
    hidden = model(**batch).last_hidden_state                 # (batch, seq, hidden)
mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
embeddings = (hidden * mask).sum(1) / mask.sum(1)            # (batch, hidden)
```

```python
from declutr import Encoder
embeddings = Encoder("path/to/this/folder").encode(["A sentence.", "Another one."])
```"""


def _training(record: TrainingRecord) -> str:
    if record.config is None:
        return ""
    trained = f"- Optimizer steps: {record.steps if record.steps is not None else 'not recorded'}"
    if record.documents is not None:
        trained += f", on {record.documents:,} documents"
    if record.seconds is not None:
        trained += f", in {_duration(record.seconds)}"
    lines = ["## Training", "", f"- Base model: {_base(record)}",
             f"- Corpus: {', '.join(f'`{f}`' for f in record.corpus) or 'not recorded'}", trained]
    if record.hardware:
        lines.append(f"- Hardware: {record.hardware}")
    data, sampler = record.config.get("data", {}), record.config.get("data", {}).get("sampler", {})
    if sampler.get("window_len"):  # MLM pretraining (data/sampler=windows)
        per_doc = sampler.get("windows_per_document") or "every"
        lines.append(f"- Per step and device: {data.get('batch_size')} documents x {per_doc} contiguous windows of "
                     f"{sampler.get('window_len')} tokens (MLM pretraining)")
    elif sampler:
        lines.append(f"- Per step and device: {data.get('batch_size')} documents x {sampler.get('num_anchors')} anchors "
                     f"x {sampler.get('num_positives')} positives, spans of {sampler.get('min_span_len')}-"
                     f"{sampler.get('max_span_len')} tokens ({sampler.get('strategy')} positives)")
    if record.losses:
        final = record.losses[-1]
        lines.append("- Final losses: " + ", ".join(f"{_loss_name(m)} {final[m]:.4f}" for m in LOSSES if m in final)
                     + f" (step {int(final['step']) + 1})")
    lines.append(f"- Full configuration: [`{CONFIG_FILE}`]({CONFIG_FILE})")
    return "\n".join(lines)


def _losses(record: TrainingRecord) -> str:
    """The logged losses at up to ten evenly spaced optimizer steps."""
    if len(record.losses) < 2:
        return ""
    metrics = [m for m in LOSSES if any(m in row for row in record.losses)]
    rows = [f"| {int(row['step']) + 1} | " + " | ".join(_number(row.get(m), 4) for m in metrics) + " |"
            for row in record.losses]
    return "\n".join(["### Training losses", "", f"| step | {' | '.join(_loss_name(m) for m in metrics)} |",
                      "|---" * (len(metrics) + 1) + "|", *rows])


def _loss_name(metric: str) -> str:
    return metric.removeprefix("train/").replace("_", " ")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _evaluation(record: TrainingRecord) -> str:
    if not record.results or not any(record.results.values()):
        return ""
    columns = list(record.results)
    metrics = list(dict.fromkeys(m for values in record.results.values() for m in values))
    rows = [f"| {m} | " + " | ".join(_number(record.results[c].get(m)) for c in columns) + " |" for m in metrics]
    return "\n".join(["## Evaluation", "", "Measured by this project at the end of training (STS: Spearman x 100 of "
                      "cosine similarities against gold scores).", "", f"| metric | {' | '.join(columns)} |",
                      "|---" * (len(columns) + 1) + "|", *rows])


def _number(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def portable_record(record: TrainingRecord) -> TrainingRecord:
    """``record`` without local absolute paths (for the exported folder): a model folder by its hub name, other
    paths relative to the data or cache folder, the project or the home folder."""
    roots = _local_roots(record.config or {})
    return replace(record, base_model=hub_name(record.base_model), corpus=_portable(record.corpus, roots),
                   config=_portable(record.config, roots))


def _local_roots(config: dict) -> list[tuple[str, str]]:
    """``(absolute folder, how the card writes it)``, most specific first: the data and cache folders, the
    project, the home folder."""
    paths = config.get("paths", {})
    roots = [(paths.get("data_dir"), "<data_dir>"), (paths.get("cache_dir"), "<cache_dir>"),
             (str(Path.cwd()), "."), (str(Path.home()), "~")]
    return sorted(((str(Path(p).resolve()), label) for p, label in roots if p), key=lambda r: -len(r[0]))


def _portable(value, roots: list[tuple[str, str]]):
    """``value`` with every absolute local path rewritten: a model folder by its hub name, else relative to a root."""
    if isinstance(value, dict):
        return {key: _portable(item, roots) for key, item in value.items()}
    if isinstance(value, list):
        return [_portable(item, roots) for item in value]
    if isinstance(value, str) and value.startswith("hf:/"):  # a corpus read from a local dataset folder
        return "hf:" + _portable(value[3:], roots)
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    if (Path(value) / "config.json").is_file() and "/" in hub_name(value):
        return hub_name(value)
    for root, label in roots:
        if value == root or value.startswith(root.rstrip("/") + "/"):
            return label + value[len(root.rstrip("/")):]
    return f"<local>/{Path(value).name}"


def _versions() -> str:
    """The versions of the libraries that wrote the folder."""
    import importlib.metadata as metadata

    names = ("declutr", "torch", "transformers", "lightning", "sentence-transformers")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return "## Framework versions\n\n" + ", ".join(found)


def _citation() -> str:
    return f"## Citation\n\n```bibtex\n{CITATION}\n```"
