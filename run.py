"""The single entry point: ``python run.py [task=train|prepare] [group=option] [key=value ...]``."""

import importlib
import pkgutil
import shutil
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import declutr.config.resolvers  # noqa: F401  (registers ${minilm_path:} and friends)
import declutr.tasks
from declutr.config.schema import validate
from declutr.errors import DeclutrConfigError, DeclutrRunError

TASKS = sorted(m.name for m in pkgutil.iter_modules(declutr.tasks.__path__))  # one module per task


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig):
    if cfg.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=True))
    try:
        if cfg.task not in TASKS:
            raise DeclutrConfigError(f"task={cfg.task!r} is not a task: use one of {', '.join(TASKS)}.")
        if cfg.task != "train":  # task=train validates first thing itself, so a sweep records a bad job and goes on
            validate(cfg)
        result = importlib.import_module(f"declutr.tasks.{cfg.task}").run(cfg)
    except DeclutrConfigError as err:
        _remove_empty_run_folder()
        raise SystemExit(f"Configuration error: {err}") from None
    except DeclutrRunError as err:
        raise SystemExit(f"Run stopped: {err}") from None
    return result.get("objective") if isinstance(result, dict) else None


def _remove_empty_run_folder() -> None:
    """A config that cannot run leaves nothing behind: drop the folder Hydra made if it holds only Hydra's files."""
    folder = Path(HydraConfig.get().runtime.output_dir)
    if folder.is_dir() and all(p.name in (".hydra", "run.log") or p.suffix == ".log" for p in folder.iterdir()):
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
