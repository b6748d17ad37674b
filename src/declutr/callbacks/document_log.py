"""``documents.tsv``: which documents each training step used (an audit trail, and proof of exact resumes)."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class DocumentLog(L.Callback):
    """Appends ``step<TAB>rank<TAB>document key`` for every document of every step to ``path``.

    A resumed run appends to the same file; steps redone after a crash appear again, later lines win.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if not batch["docs"]:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        path = self.path if trainer.world_size == 1 else self.path.with_suffix(f".rank{trainer.global_rank}.tsv")
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(f"{trainer.global_step}\t{trainer.global_rank}\t{doc}\n" for doc in batch["docs"])
