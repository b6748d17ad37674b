"""Evaluation of sentence embeddings (STS, transfer tasks)."""
