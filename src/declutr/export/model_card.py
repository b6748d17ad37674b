"""The exported folder's ``README.md``: what the model is, how to load it, how it was trained and scored."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from declutr.encoder import looks_local_path
from declutr.export.provenance import TrainingRecord


def render_model_card(record: TrainingRecord, name: str, dim: int, window: int) -> str:
    """Markdown with Hugging Face metadata front matter, for a ``dim``-wide encoder truncating at ``window`` tokens."""
    sections = [_front_matter(record), f"# {name}\n\n{_summary(record, dim, window)}", _usage(window),
                _training(record), _evaluation(record), _configuration(record)]
    return "\n\n".join(s for s in sections if s) + "\n"


def _front_matter(record: TrainingRecord) -> str:
    lines = ["---", "library_name: sentence-transformers", "pipeline_tag: sentence-similarity",
             "tags: [sentence-transformers, feature-extraction, sentence-similarity, declutr]"]
    if not record.random_init and not Path(record.base_model).exists() and not looks_local_path(record.base_model):
        lines.append(f"base_model: {record.base_model}")  # the hub only accepts hub names here
    return "\n".join([*lines, "---"])


def _base(record: TrainingRecord) -> str:
    return f"`{record.base_model}`" + (" (its architecture only, from random weights)" if record.random_init else "")


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
    lines = ["## Training", "", f"- Base model: {_base(record)}",
             f"- Corpus: {', '.join(f'`{f}`' for f in record.corpus) or 'not recorded'}",
             f"- Optimizer steps: {record.steps if record.steps is not None else 'not recorded'}"]
    data, sampler = record.config.get("data", {}), record.config.get("data", {}).get("sampler", {})
    if sampler.get("window_len"):  # MLM pretraining (data/sampler=windows)
        per_doc = sampler.get("windows_per_document") or "every"
        lines.append(f"- Per step and device: {data.get('batch_size')} documents x {per_doc} contiguous windows of "
                     f"{sampler.get('window_len')} tokens (MLM pretraining)")
    elif sampler:
        lines.append(f"- Per step and device: {data.get('batch_size')} documents x {sampler.get('num_anchors')} anchors "
                     f"x {sampler.get('num_positives')} positives, spans of {sampler.get('min_span_len')}-"
                     f"{sampler.get('max_span_len')} tokens ({sampler.get('strategy')} positives)")
    return "\n".join(lines)


def _evaluation(record: TrainingRecord) -> str:
    if not record.results or not any(record.results.values()):
        return ""
    columns = list(record.results)
    metrics = list(dict.fromkeys(m for values in record.results.values() for m in values))
    rows = [f"| {m} | " + " | ".join(_number(record.results[c].get(m)) for c in columns) + " |" for m in metrics]
    return "\n".join(["## Evaluation", "", "Measured by this project at the end of training (STS: Spearman x 100 of "
                      "cosine similarities against gold scores).", "", f"| metric | {' | '.join(columns)} |",
                      "|---" * (len(columns) + 1) + "|", *rows])


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _configuration(record: TrainingRecord) -> str:
    if record.config is None:
        return ""
    return f"## Full configuration\n\n```yaml\n{OmegaConf.to_yaml(OmegaConf.create(record.config)).rstrip()}\n```"
