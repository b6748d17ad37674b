"""The LightningModule's pieces: the objective over the embedded batch with the configured contrastive loss, MLM at
masked positions only, chunked encoding and GradCache equal to the plain computation, torch.compile with its
fallback, parameter groups, the LR schedule, the loss's settings in checkpoints."""

import warnings
from functools import partial

import pytest
import torch
from lightning import Trainer

from declutr.data.datamodule import DeCLUTRDataModule
from declutr.data.spans import SpanSampler
from declutr.errors import DeclutrConfigError
from declutr.files.checkpoints import load_checkpoint
from declutr.model.losses import NTXentLoss, OneWayNTXentLoss
from declutr.model.module import DeCLUTRModule
from declutr.tasks.train import run
from tests.helpers.model import TINY, assert_same_gradients, relative_distance
from tests.helpers.paths import STATE_UNION
from tests.helpers.runs import metrics


def make_module(**options) -> DeCLUTRModule:
    torch.manual_seed(0)  # the same random weights for every option
    return DeCLUTRModule(TINY, optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1), **options)


@pytest.fixture
def module(tokenizer):
    return make_module(tokenizer=tokenizer)


@pytest.fixture(scope="module")
def batches(tokenizer) -> list[dict]:
    """Real batches of the default run's shape: 4 State of the Union documents -> 8 anchors (34-130 tokens,
    MLM-masked) and 16 positives, lengths as varied as the span sampler makes them."""
    data = DeCLUTRDataModule(tokenizer, [str(STATE_UNION)], SpanSampler(2, 2, 32, 128), batch_size=4, num_workers=0)
    stream = iter(data.train_dataloader())
    return [next(stream) for _ in range(4)]


def step(module: DeCLUTRModule, batch: dict, seed: int = 7) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """One forward and backward: ``({metric: value}, {parameter: gradient})``; ``seed`` fixes dropout."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    loss, metrics = module.compute_loss(batch)
    loss.backward()
    grads = {name: p.grad for name, p in module.named_parameters() if p.grad is not None}
    return {name: value.item() for name, value in metrics.items()}, grads


LOSSES = ("train/loss", "train/contrastive_loss", "train/mlm_loss")
SIZES = [1, 3, 8, 100]  # one row per call, uneven chunks, the 8 anchors whole (positives in 2), beyond the batch


@pytest.mark.parametrize("loss", [NTXentLoss(0.05), OneWayNTXentLoss(0.1)], ids=lambda loss: loss.name)
def test_the_objective_is_the_weighted_sum_of_the_configured_loss_and_mlm(batches, loss):
    """L = w_c * loss(anchors, mean positives) + w_m * MLM over the embedded batch, with the loss given (eval mode:
    embedding twice gives the same embeddings); the hyper-parameters hold the loss's settings, not the loss."""
    module = make_module(loss=loss, contrastive_weight=0.7, mlm_weight=1.3).eval()
    embedded = module.embed_batch(batches[0])
    assert embedded.anchors.shape == embedded.positives.shape == (8, 32) and embedded.mlm is not None
    total, values = module.compute_loss(batches[0])
    contrastive = loss(embedded.anchors, embedded.positives)
    assert values["train/contrastive_loss"].item() == pytest.approx(contrastive.item(), rel=1e-6)
    assert total.item() == pytest.approx(0.7 * contrastive.item() + 1.3 * embedded.mlm.item(), rel=1e-6)
    assert values["train/loss"].item() == pytest.approx(total.item(), rel=1e-6)
    assert module.loss is loss and module.hparams["loss"] == loss.config() and "temperature" not in module.hparams


def test_without_a_loss_the_module_trains_with_the_paper_s_nt_xent():
    module = make_module()
    assert type(module.loss) is NTXentLoss and module.loss.temperature == 0.05


@pytest.mark.parametrize("option", ["ntxent", "ntxent_one_way"])
def test_a_run_with_each_loss_trains_saves_the_loss_settings_in_checkpoints_and_resumes(make_config, option):
    """3 real steps of the tiny model with the loss of ``model/loss=<option>``; its checkpoint holds the loss's
    settings as plain values (read with ``weights_only``), not a temperature of the module, and a 4th step resumes
    from it."""
    checkpoints = [*(a for a in FAST if a != "callbacks=none"), "~callbacks.progress_bar", "~callbacks.span_log",
                   "~callbacks.stsb_dev", "callbacks.model_checkpoint.every_n_train_steps=1",
                   "callbacks.model_checkpoint.monitor=null", f"model/loss={option}", "model.loss.temperature=0.1"]
    cfg = make_config(*checkpoints, "trainer.max_steps=3")
    result = run(cfg)
    assert result["steps"] == 3 and result["nonfinite_steps"] == 0
    rows = [r for r in metrics(cfg.paths.output_dir) if r.get("train/contrastive_loss")]
    assert len(rows) == 3 and all(float(r["train/contrastive_loss"]) > 0 for r in rows)
    last = f"{cfg.paths.output_dir}/checkpoints/last.ckpt"
    saved = load_checkpoint(last)["hyper_parameters"]
    assert saved["loss"] == {"_target_": cfg.model.loss._target_, "temperature": 0.1} and "temperature" not in saved
    assert run(make_config(*checkpoints, "trainer.max_steps=4", f"ckpt_path={last}"))["steps"] == 4


def test_loaded_encoder_is_in_train_mode(module):
    assert module.encoder.training and module.head is module.encoder.cls


def test_mlm_on_masked_positions_equals_the_full_logits_loss(module):
    module.eval()  # no dropout, so both paths see the same activations
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 7] = 1500, 1600, 1700
    _, mlm, _ = module.embed_tokens(ids, mask, labels)
    full = module.encoder(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert mlm.item() == pytest.approx(full.item(), rel=1e-5)


@pytest.mark.parametrize("options", [{}, {"chunk_size": 3}, {"grad_cache": {"chunk_size": 3}}],
                         ids=["whole", "chunked", "grad cache"])
def test_the_mlm_head_only_sees_masked_positions(batches, options):
    module = make_module(**options)
    rows = []
    module.head.register_forward_hook(lambda head, args, out: rows.append(args[0].shape[0]))
    with torch.no_grad():  # a forward pass only: with GradCache the backward would run the head again
        module.compute_loss(batches[0])
    assert sum(rows) == int((batches[0]["mlm_labels"] != -100).sum()) > 0


@pytest.mark.parametrize("mlm_weight", [1.0, 0.0], ids=["mlm", "no mlm"])
@pytest.mark.parametrize("cached", [False, True], ids=["chunks", "grad cache"])
@pytest.mark.parametrize("size", SIZES)
def test_chunking_leaves_embeddings_loss_and_gradients_unchanged(batches, size, cached, mlm_weight):
    """Eval mode (no dropout): any chunk size, with or without GradCache, computes what one call per group
    computes: the same embeddings in the same rows, so the same pairs and negatives, loss and gradients."""
    option = {"grad_cache": {"chunk_size": size}} if cached else {"chunk_size": size}
    plain, chunked = make_module(mlm_weight=mlm_weight).eval(), make_module(mlm_weight=mlm_weight, **option).eval()
    batch = batches[0]
    for ids, mask in (("anchor_input_ids", "anchor_attention_mask"), ("positive_input_ids", "positive_attention_mask")):
        with torch.no_grad():
            expected, chunks = plain.embed_tokens(batch[ids], batch[mask])[0], chunked.embed_tokens(batch[ids], batch[mask])[0]
        torch.testing.assert_close(chunks, expected, rtol=1e-5, atol=1e-6)
    (metrics, grads), (reference, reference_grads) = step(chunked, batch), step(plain, batch)
    for name in LOSSES[: 3 if mlm_weight else 2]:
        assert metrics[name] == pytest.approx(reference[name], rel=1e-5), name
    assert_same_gradients(grads, reference_grads, rel=1e-5)


@pytest.mark.parametrize("mlm_weight", [1.0, 0.0], ids=["mlm", "no mlm"])
@pytest.mark.parametrize("size", SIZES)
def test_grad_cache_recomputes_each_chunk_with_its_own_dropout(batches, size, mlm_weight):
    """Train mode: GradCache's recomputed chunks reuse their forward's dropout masks (RNG state), so its
    gradients equal those of the same chunks kept in memory. (Dropout masks depend on the chunk shapes, so
    different chunkings only agree without dropout: the test above.)"""
    cached = make_module(mlm_weight=mlm_weight, grad_cache={"chunk_size": size})
    kept = make_module(mlm_weight=mlm_weight, chunk_size=size)
    calls = []
    cached.body.register_forward_hook(lambda body, args, out: calls.append(1))
    (metrics, grads), (reference, reference_grads) = step(cached, batches[1]), step(kept, batches[1])
    chunks = sum(-(-rows // size) for rows in (8, 16))
    assert len(calls) == 2 * chunks  # every chunk ran twice: forward, then recomputed in backward
    for name in LOSSES[: 3 if mlm_weight else 2]:
        assert metrics[name] == pytest.approx(reference[name], rel=1e-6), name
    assert_same_gradients(grads, reference_grads, rel=1e-6)
    # Dropout was on: it moves the gradient by ~40% (the loss of the random-init encoder barely moves: by as
    # little as 1e-5 relative for some dropout masks, so the loss cannot tell).
    assert relative_distance(reference_grads, step(kept.eval(), batches[1])[1]) > 0.1


def test_length_sorted_chunks_pay_for_less_padding(batches):
    """On the default run's span lengths, chunks of 4 pay for far less padding than one call per group."""
    whole, chunked = make_module().eval(), make_module(chunk_size=4).eval()
    with torch.no_grad():
        for batch in batches:
            paid, base = chunked.compute_loss(batch)[1], whole.compute_loss(batch)[1]
            assert paid["train/padding_fraction_unsorted"] == base["train/padding_fraction"] > 0.15
            assert paid["train/padding_fraction"] < 0.5 * base["train/padding_fraction"]


@pytest.mark.parametrize("options, match", [
    ({"chunk_size": 0}, "model.chunk_size=0"),
    ({"chunk_size": True}, "model.chunk_size=True"),
    ({"chunk_size": "big"}, "model.chunk_size='big'.*or auto"),
    ({"grad_cache": {"chunk_size": "auto"}}, r"model.grad_cache.chunk_size='auto': not a number; allowed: an integer >= 1, or null"),
    ({"grad_cache": {"chunk_size": -2}}, r"model.grad_cache.chunk_size=-2"),
    ({"grad_cache": {"chunks": 4}}, r"must hold only chunk_size.*model.grad_cache.chunk_size=32"),
])
def test_bad_chunk_sizes_are_refused(options, match):
    with pytest.raises(DeclutrConfigError, match=match):
        DeCLUTRModule(TINY, optimizer=torch.optim.AdamW, **options)


def test_grad_cache_chunk_size_is_the_chunk_size():
    module = make_module(chunk_size=2, grad_cache={"chunk_size": 5})
    assert (module.chunk_size, module.recompute) == (5, True)
    module = make_module(chunk_size=2, grad_cache={"chunk_size": None})
    assert (module.chunk_size, module.recompute) == (2, False)


def test_auto_chunk_size_chunks_on_cpu_only():
    module = make_module(chunk_size="auto")
    assert module.rows_per_chunk(torch.device("cpu")) == DeCLUTRModule.CPU_CHUNK_SIZE
    assert module.rows_per_chunk(torch.device("cuda", 0)) is None
    assert make_module(chunk_size=3).rows_per_chunk(torch.device("cuda", 0)) == 3
    assert make_module(chunk_size="auto", grad_cache={"chunk_size": 5}).rows_per_chunk(torch.device("cuda")) == 5


@pytest.mark.parametrize(("precision", "rows"), [("32-true", DeCLUTRModule.CPU_CHUNK_SIZE), ("bf16-mixed", None)])
def test_auto_chunk_size_does_not_chunk_under_cpu_bf16(precision, rows):
    """AMX multiplies one padded bf16 batch faster than length-sorted chunks of it (docs/results.md)."""
    trainer = Trainer(accelerator="cpu", precision=precision, logger=False, enable_checkpointing=False)
    auto, explicit = make_module(chunk_size="auto"), make_module(chunk_size=3)
    auto.trainer = explicit.trainer = trainer
    assert auto.rows_per_chunk(torch.device("cpu")) == rows
    assert explicit.rows_per_chunk(torch.device("cpu")) == 3  # an explicit size is kept


def test_compile_failure_falls_back_to_eager_with_a_warning(batches, monkeypatch):
    """Fault injection: a compiler backend that fails, as inductor does without a working C++ compiler."""

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(DeCLUTRModule, "COMPILE_BACKEND", staticmethod(broken_backend))
    compiled, eager = make_module(compile=True).eval(), make_module().eval()
    failed = r"model.compile=true failed \(RuntimeError: no C\+\+ compiler found\); training continues uncompiled"
    with pytest.warns(UserWarning, match=failed):
        metrics, grads = step(compiled, batches[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once; later steps run eager without trying again
        step(compiled, batches[1])
    reference, reference_grads = step(eager, batches[0])
    assert metrics["train/loss"] == pytest.approx(reference["train/loss"], rel=1e-6)
    assert_same_gradients(grads, reference_grads, rel=1e-6)


FAST = ["model=tiny", f"data.files=[{STATE_UNION}]", "evaluate.enabled=false", "callbacks=none",
        "data.num_workers=0", "trainer.log_every_n_steps=1"]


def test_grad_cache_trains_with_accumulation_and_clipping_and_logs_padding(make_config):
    cfg = make_config(*FAST, "trainer.max_steps=3", "model.grad_cache.chunk_size=3",
                      "trainer.accumulate_grad_batches=2")
    result = run(cfg)
    assert result["nonfinite_steps"] == 0
    rows = [r for r in metrics(cfg.paths.output_dir) if r.get("train/padding_fraction")]
    assert len(rows) == 3 and all(float(r["train/loss"]) > 0 for r in rows)
    paid = sum(float(r["train/padding_fraction"]) for r in rows)
    assert paid < sum(float(r["train/padding_fraction_unsorted"]) for r in rows)


@pytest.mark.slow  # inductor compiles the tiny BERT twice (static, then dynamic shapes): 1.5-3 min on 2 cores
def test_compiled_encoder_trains(make_config):
    cfg = make_config(*FAST, "trainer.max_steps=3", "model.compile=true")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="model.compile=true failed")
        result = run(cfg)
    assert result["nonfinite_steps"] == 0


def test_no_weight_decay_on_biases_and_layernorm(module):
    class FakeTrainer:
        estimated_stepping_batches = 100

    module.trainer = FakeTrainer()
    config = module.configure_optimizers()
    decay, no_decay = config["optimizer"].param_groups
    names = {id(p): n for n, p in module.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert not any("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(module.parameters()))


def test_unbounded_schedule_is_refused(module):
    class Endless:
        estimated_stepping_batches = float("inf")

    module.trainer = Endless()
    with pytest.raises(DeclutrConfigError, match="trainer.max_steps"):
        module.configure_optimizers()


def test_without_mlm_only_the_heads_own_parameters_are_frozen():
    module = make_module(mlm_weight=0.0)
    body = {id(p) for p in module.body.parameters()}
    frozen = [name for name, p in module.encoder.named_parameters() if not p.requires_grad]
    assert frozen and all(name.startswith("cls.") for name in frozen)
    assert all(p.requires_grad for p in module.body.parameters())
    assert all(id(p) in body for p in module.encoder.parameters() if p.requires_grad)
    assert all(p.requires_grad for p in make_module().encoder.parameters())


def test_both_objectives_off_is_refused(tokenizer):
    with pytest.raises(DeclutrConfigError, match="nothing to train"):
        DeCLUTRModule(TINY, optimizer=torch.optim.AdamW, contrastive_weight=0, mlm_weight=0)
