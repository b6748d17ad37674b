"""A training run's bookkeeping, made where runs are made: what identifies it (:mod:`~declutr.runs.context`, with
its code version, :mod:`~declutr.runs.git_commit`) and how it ended (:mod:`~declutr.runs.record`, ``results.json``)."""
