"""Ablation sweeps: each run's outcome (``results.json``), the end-of-sweep summary, and the report of a sweep."""
