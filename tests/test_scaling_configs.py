"""Scale-out configs: the SLURM sweep launcher (hydra/launcher=slurm) and the multi-GPU trainers compose and
resolve to the classes they name. There is no SLURM here: the launcher runs up to the sbatch call, which is
replaced by a recorder of the job script submitit would submit (and an ``srun`` that is never run stands in
for the one submitit looks for on the PATH)."""

import os

import submitit
from hydra.utils import instantiate

from tests.helpers.configs import compose_hydra


def test_slurm_launcher_asks_for_one_task_per_gpu_on_every_node(tmp_path, monkeypatch):
    cfg = compose_hydra("hydra/launcher=slurm", "trainer=multinode", "trainer.devices=4", "trainer.num_nodes=2",
                       "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}/sweep")
    launcher = instantiate(cfg.hydra.launcher)
    # Hydra's plugin discovery imports the plugin module itself: compare the class by its import path.
    assert f"{type(launcher).__module__}.{type(launcher).__name__}" == cfg.hydra.launcher._target_
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.params["nodes"], launcher.params["tasks_per_node"], launcher.params["gpus_per_node"]) == (2, 4, 4)
    scripts = []

    def record_sbatch_script(executor, fn, *iterables):  # what would go to sbatch, one array job per sweep
        scripts.append(executor._executor._make_submission_file_text("python -m submitit.core._submit", "uid"))
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", record_sbatch_script)
    (tmp_path / "srun").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    launcher.setup(hydra_context=None, task_function=print, config=cfg)
    assert launcher.launch([["seed=1"], ["seed=2"]], initial_job_idx=0) == []
    (script,) = scripts
    for option in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=1440"):
        assert f"#SBATCH {option}" in script, option
    assert "srun" in script  # SLURM starts the processes, so Lightning does not re-launch run.py


def test_multinode_and_fsdp_trainers_name_nodes_devices_and_strategy():
    multinode = compose_hydra("trainer=multinode").trainer
    assert (multinode.strategy, multinode.devices, multinode.num_nodes, multinode.accelerator) == ("ddp", 8, 2, "gpu")
    fsdp = compose_hydra("trainer=fsdp").trainer
    assert fsdp.strategy._target_ == "lightning.pytorch.strategies.FSDPStrategy"
    assert fsdp.precision == "bf16-mixed" and fsdp.gradient_clip_val == 1.0  # DeCLUTRModule clips it over all shards
