"""Data flow: files -> documents -> token ids -> spans -> batches."""
