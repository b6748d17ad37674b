"""Export a trained encoder: one folder for Hugging Face, sentence-transformers and ``declutr.Encoder``, with a model card."""

from declutr.export.folder import push_to_hub, write_export
from declutr.export.provenance import TrainingRecord, read_provenance, training_record

__all__ = ["TrainingRecord", "push_to_hub", "read_provenance", "training_record", "write_export"]
