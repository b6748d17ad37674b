"""trainer=fsdp's sharding, on two real gloo processes: the loss and every gradient equal one process on the
global batch, so the cross-device negatives (``all_gather_with_grad``) and the loss scaling hold under FSDP,
and gradient clipping by norm clips the whole model's gradient as one process would.

Lightning runs FSDP on GPUs only; torch's FSDP itself runs on CPU, so this wraps the module with the
strategy's own settings (auto-wrap policy, sharding strategy) the way Lightning does, and calls it through
the wrapper as Lightning's training step does. For the clipping hook the module is given a stand-in trainer
holding a real ``FSDPStrategy`` whose model is the sharded root, which is all the hook reads.
"""

from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra.utils import instantiate
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from tests.helpers.distributed import free_port, global_batch, gradients, make_module, rows
from tests.helpers.model import assert_same_gradients

WRAPPED = "_fsdp_wrapped_module."  # FSDP's prefix in the names of the parameters of a wrapped unit
MAX_NORM = 1e-3  # far below the tiny BERT's gradient norm: clipping scales every gradient


def full_gradients(sharded: FSDP, module) -> dict[str, torch.Tensor]:
    with FSDP.summon_full_params(sharded, with_grads=True):
        return {name.replace(WRAPPED, ""): grad for name, grad in gradients(module).items()}


def _rank(rank: int, world: int, port: int, policy, sharding, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    module, batch = make_module(1.0), global_batch()
    module.forward = module.compute_loss  # the wrapper's forward runs the loss, as Lightning's redirection does
    sharded = FSDP(module, auto_wrap_policy=policy, sharding_strategy=sharding, use_orig_params=True,
                   device_id=torch.device("cpu"))
    units = sum(isinstance(m, FSDP) for m in sharded.modules()) - 1  # minus the root
    loss, metrics = sharded(rows(batch, slice(3 * rank, 3 * rank + 3)))
    loss.backward()  # FSDP reduce-scatters the gradients, averaging over ranks as DDP does
    grads = full_gradients(sharded, module)
    strategy = FSDPStrategy()
    strategy.model = sharded
    module._trainer = SimpleNamespace(strategy=strategy, precision="32-true")
    module.configure_gradient_clipping(None, gradient_clip_val=MAX_NORM, gradient_clip_algorithm="norm")
    clipped = full_gradients(sharded, module)
    if rank == 0:
        torch.save({"metrics": {k: v.detach() for k, v in metrics.items()}, "grads": grads, "clipped": clipped,
                    "units": units}, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_fsdp_config_shards_one_unit_per_block_and_matches_one_process(make_config, tmp_path):
    strategy = instantiate(make_config("trainer=fsdp", "model=tiny").trainer.strategy)
    assert isinstance(strategy, FSDPStrategy) and strategy._state_dict_type == "full"  # AtomicCheckpointIO writes it
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_rank, args=(2, free_port(), strategy.kwargs["auto_wrap_policy"], strategy.sharding_strategy, out),
             nprocs=2, join=True)
    sharded = torch.load(out, weights_only=True)
    single = make_module(1.0)
    assert sharded["units"] == single.encoder.config.num_hidden_layers, "one FSDP unit per transformer block"
    loss, metrics = single.compute_loss(global_batch())
    loss.backward()
    for name, value in metrics.items():
        if name.endswith("loss"):  # the losses are global; other metrics (padding) are per rank
            assert sharded["metrics"][name].item() == pytest.approx(value.item(), rel=1e-5), name
    reference = gradients(single)
    assert_same_gradients(sharded["grads"], reference, rel=1e-4, floor=1e-6)
    assert torch.nn.utils.clip_grad_norm_(single.parameters(), MAX_NORM) > 10 * MAX_NORM
    assert_same_gradients(sharded["clipped"], gradients(single), rel=1e-4, floor=1e-6)

