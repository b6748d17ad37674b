"""The single entry point: ``python run.py [task=<task>] [group=option] [key=value ...]``; ``task=<task>`` picks the
primary config ``conf/<task>.yaml`` (:mod:`declutr.config.primary`)."""

import importlib
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import declutr.config.resolvers  # noqa: F401  (registers ${minilm_path:} and friends)
from declutr.config.keys import explain_failed_composition
from declutr.config.primary import config_name
from declutr.config.schema import refusal, validate
from declutr.console import setup_console
from declutr.errors import DeclutrConfigError, DeclutrInterrupted, DeclutrRunError
from declutr.files.run_folder import LOCK_FILE, run_folder_lock, write_hydra_files

CONFIG_DIR = Path(__file__).parent / "conf"  # conf/<task>.yaml: one primary config per task


def main(cfg: DictConfig):
    setup_console()  # each log line once, no adverts, known-harmless warnings filtered (declutr.console)
    if cfg.get("print_config"):
        print(OmegaConf.to_yaml(cfg, resolve=True))
    folder = Path(HydraConfig.get().runtime.output_dir)
    try:
        with run_folder_lock(folder):  # before anything is written into it: a held folder is refused
            try:
                write_hydra_files(folder, cfg, keep_existing=True)  # a resume's folder keeps its config until checked
                result = _run_task(cfg)
            except DeclutrConfigError:
                _remove_empty_run_folder(folder)
                raise
    except DeclutrConfigError as err:
        raise SystemExit(f"Configuration error: {err}") from None
    except DeclutrRunError as err:
        raise SystemExit(f"Run stopped: {err}") from None
    except DeclutrInterrupted as stop:
        print(f"Run {stop}. Recorded in {folder / 'results.json'} (status interrupted).", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None
    return result.get("objective") if isinstance(result, dict) else None


def _run_task(cfg: DictConfig):
    if cfg.task != "train":  # task=train validates first thing itself, so a sweep records a bad job and goes on
        validate(cfg)
    return importlib.import_module(f"declutr.tasks.{cfg.task}").run(cfg)


def _remove_empty_run_folder(folder: Path) -> None:
    """A config that cannot run leaves nothing behind: drop this run's folder if it holds only its own Hydra files
    and lock (never a folder with anything else: a refused resume leaves the run it belongs to as it was)."""
    if folder.is_dir() and all(p.name in (".hydra", LOCK_FILE) or p.suffix == ".log" for p in folder.iterdir()):
        shutil.rmtree(folder)


if __name__ == "__main__":
    try:
        task = config_name(sys.argv[1:], CONFIG_DIR)  # an unknown task stops here, before Hydra makes a run folder
    except DeclutrConfigError as err:
        raise SystemExit(f"Configuration error: {err}") from None
    try:
        hydra.main(version_base="1.3", config_path="conf", config_name=task)(main)()
    except SystemExit as stop:
        # Hydra exits with 1 after printing why it could not compose the config (run.py's own errors exit with their
        # message): a key the config does not have gets its nearest valid keys, as the last word.
        unknown = explain_failed_composition(sys.argv[1:], CONFIG_DIR, task) if stop.code == 1 else []
        if unknown:
            raise SystemExit(f"Configuration error: {refusal(unknown)}") from None
        raise
