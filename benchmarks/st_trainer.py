"""Training tokens/s of DeCLUTR's step against sentence-transformers' trainer: same model, same pairs, same process.

    PYTHONPATH=src python benchmarks/st_trainer.py [--device cpu|cuda] [--steps 10] [--rounds 3]
        [--precision 32-true|bf16-mixed] [--model-dir DIR] [--threads N] [OVERRIDE ...]

Ours: ``DeCLUTRModule`` under a Lightning Trainer, contrastive only (``model.mlm_weight=0``) with one
positive per anchor (``data.sampler.num_positives=1``), on real collated batches of the corpus (default 16
documents x 2 anchors = 32 pairs per step, spans 32-128). Theirs: ``SentenceTransformerTrainer`` with
``MultipleNegativesRankingLoss`` (scale = 1 / our ``model.loss.temperature``: 20 at 0.05; for our NT-Xent, where the
installed version has ``directions``, all four, so each embedding meets the same 2n-2 negatives; for
``model/loss=ntxent_one_way`` its default one direction, the same as ours) on the same encoder
(our initial weights, mean pooling), the same anchor/positive texts (our spans decoded), the same batch size,
window (our longest span), learning rate, clipping and precision.

Both are timed per optimizer step, from after the batch is fetched to after the optimizer step, so data
loading and tokenisation are not counted for either (theirs includes the copy to the device, ours has the
batch on it already). Each round gives both the same ``--steps`` batches in the same order (their default
sampler would shuffle the pairs across batches), the order of the two alternating between rounds so load
from other processes falls on both; the first step of each round (optimizer state allocation) and the
whole first round (warm-up) are not kept.
Reported: non-padding tokens/s and pairs/s of each, medians over the rounds, and the ratio ours / theirs.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from statistics import median

import torch
from torch.utils.data import DataLoader
from training_harness import (
    StepTimer,
    benchmark_overrides,
    collect_batches,
    command_line,
    compose_config,
    machine,
    quiet,
    synchronize,
)

OURS, THEIRS = "declutr (Lightning)", "sentence-transformers"


def decode_pairs(batches: list[dict], tokenizer) -> list[tuple[list[str], list[str]]]:
    """Each batch's anchors and positives (one per anchor) as text, without special tokens or padding."""
    def texts(ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
        return tokenizer.batch_decode([row[m.bool()].tolist() for row, m in zip(ids, mask)], skip_special_tokens=True)

    return [(texts(b["anchor_input_ids"], b["anchor_attention_mask"]),
             texts(b["positive_input_ids"], b["positive_attention_mask"])) for b in batches]


class TheirStepTimer:
    """The sentence-transformers side of :class:`StepTimer`: a transformers ``TrainerCallback`` timing each
    optimizer step and reading the non-padding tokens the loss saw (counted without a host sync)."""

    def __init__(self, loss) -> None:
        self.loss, self.seconds, self.tokens, self._start = loss, [], [], 0.0

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                synchronize()
                timer.loss.counts.clear()
                timer._start = time.perf_counter()

            def on_step_end(self, args, state, control, **kwargs):
                synchronize()
                if state.global_step > 1:  # the first step of a round allocates the optimizer state
                    timer.seconds.append(time.perf_counter() - timer._start)
                    timer.tokens.append(int(sum(timer.loss.counts)))

        return Callback()


def their_loss(model, ours):
    """MultipleNegativesRankingLoss computing what our loss ``ours`` computes, which also counts the non-padding tokens
    of what it is given; and whether it runs in all four directions (our NT-Xent's) rather than one."""
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    from declutr.model.losses import NTXentLoss

    class CountingLoss(MultipleNegativesRankingLoss):
        def __init__(self, model, **kwargs) -> None:
            super().__init__(model, **kwargs)
            self.counts: list[torch.Tensor] = []

        def forward(self, sentence_features, labels):
            self.counts += [features["attention_mask"].sum() for features in sentence_features]
            return super().forward(sentence_features, labels)

    symmetric = isinstance(ours, NTXentLoss) and \
        "directions" in inspect.signature(MultipleNegativesRankingLoss.__init__).parameters
    kwargs = {"directions": ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")} if symmetric else {}
    return CountingLoss(model, scale=1.0 / ours.temperature, **kwargs), symmetric


def their_model(module, tokenizer, window: int, device: str, folder: str):
    """A SentenceTransformer (Transformer + mean pooling) holding our encoder's current weights."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer

    module.body.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    transformer = Transformer(folder, max_seq_length=window)
    pooling = Pooling(module.body.config.hidden_size, pooling_mode="mean")
    return SentenceTransformer(modules=[transformer, pooling], device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("overrides", nargs="*", help="config overrides (data.batch_size, data.sampler.*, model=...)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=10, help="steps per round and side (the first is not timed)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, after one warm-up round")
    parser.add_argument("--precision", choices=["32-true", "bf16-mixed"], default="32-true")
    parser.add_argument("--model-dir", help="a model folder without weights (config + tokenizer): random weights")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_intermixed_args()  # overrides before, after or between the options
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step of each round is not timed")
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet()

    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler
    from transformers import PrinterCallback

    from declutr.config.instantiate import build
    from declutr.tasks.train import build_datamodule
    from declutr.tokenizer import load_tokenizer

    overrides = ["data.batch_size=16", *benchmark_overrides(args.device, args.model_dir), "model.mlm_weight=0",
                 "data.sampler.num_positives=1", f"trainer.precision={args.precision}", *args.overrides]
    scratch = tempfile.TemporaryDirectory()
    cfg = compose_config(overrides, scratch.name)
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path)
    datamodule = build_datamodule(cfg, tokenizer)  # model.mlm_weight=0: no masking
    batches = collect_batches(datamodule, (args.rounds + 1) * args.steps)
    pairs = decode_pairs(batches, tokenizer)
    window = max(max(b["anchor_input_ids"].shape[1], b["positive_input_ids"].shape[1]) for b in batches)
    torch.manual_seed(0)
    module = build(cfg.model, tokenizer=tokenizer, _convert_="all")
    st_model = their_model(module, tokenizer, window, args.device, f"{scratch.name}/st")
    loss, symmetric = their_loss(st_model, module.loss)
    size = len(pairs[0][0])
    print(f"{command_line()}\n{machine()}\n{size} pairs per step, window {window} tokens, precision {args.precision}, "
          f"{args.rounds} rounds of {args.steps} steps (+1 warm-up round); overrides: {' '.join(overrides)}\n"
          f"ours: {module.loss.name} (temperature {module.loss.temperature}); theirs: MultipleNegativesRankingLoss "
          f"(scale {1.0 / module.loss.temperature:g}), {'all four directions' if symmetric else 'query_to_doc only'}\n",
          flush=True)

    def ours(round_batches: list[dict]) -> tuple[list[float], list[int]]:
        timer = StepTimer(warmup=1)
        trainer = build(cfg.trainer, callbacks=[timer], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, max_steps=len(round_batches))
        trainer.fit(module, train_dataloaders=DataLoader(round_batches, batch_size=None, collate_fn=lambda b: b))
        return timer.seconds, timer.tokens

    def in_order(dataset, batch_size: int, drop_last: bool, **_) -> DefaultBatchSampler:
        """Their batches in our order (their default shuffles): step k of both sides holds the same pairs."""
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)

    def theirs(round_pairs: list[tuple[list[str], list[str]]]) -> tuple[list[float], list[int]]:
        timer = TheirStepTimer(loss)
        data = Dataset.from_dict({"anchor": [a for anchors, _ in round_pairs for a in anchors],
                                  "positive": [p for _, positives in round_pairs for p in positives]})
        training = SentenceTransformerTrainingArguments(
            output_dir=f"{scratch.name}/st-out", max_steps=len(round_pairs), per_device_train_batch_size=size,
            learning_rate=cfg.model.optimizer.lr, weight_decay=cfg.model.optimizer.weight_decay,
            adam_epsilon=cfg.model.optimizer.eps, max_grad_norm=cfg.trainer.gradient_clip_val or 0.0,
            warmup_steps=int(cfg.model.warmup_fraction * len(round_pairs)), lr_scheduler_type="linear",
            bf16=args.precision == "bf16-mixed", use_cpu=args.device == "cpu", dataloader_drop_last=True,
            dataloader_num_workers=0, batch_sampler=in_order, save_strategy="no", logging_strategy="no",
            report_to="none", disable_tqdm=True, seed=0)
        trainer = SentenceTransformerTrainer(model=st_model, args=training, train_dataset=data, loss=loss,
                                             callbacks=[timer.callback()])
        trainer.remove_callback(PrinterCallback)  # its end-of-training summary would break up the table
        trainer.train()
        return timer.seconds, timer.tokens

    rates: dict[str, list[float]] = {OURS: [], THEIRS: []}
    pair_rates: dict[str, list[float]] = {OURS: [], THEIRS: []}
    for number in range(args.rounds + 1):
        part = slice(number * args.steps, (number + 1) * args.steps)
        runs = {OURS: lambda: ours(batches[part]), THEIRS: lambda: theirs(pairs[part])}  # noqa: B023 (run below)
        order = [OURS, THEIRS] if number % 2 == 0 else [THEIRS, OURS]
        measured = {name: runs[name]() for name in order}
        if number == 0:
            print("warm-up round done", file=sys.stderr, flush=True)
            continue
        for name, (seconds, tokens) in measured.items():
            rates[name].append(sum(tokens) / sum(seconds))
            pair_rates[name].append(size * len(seconds) / sum(seconds))
        print(f"  round {number} ({' first, '.join(order)} second): " + ", ".join(
            f"{name} {rates[name][-1]:,.0f} tokens/s ({sum(measured[name][1]) / len(measured[name][1]):,.0f}/step)"
            for name in rates), flush=True)
    print(f"\n{'':<22}{'tokens/s':>10}{'pairs/s':>10}   "
          f"(median of {args.rounds} rounds, {args.steps - 1} timed steps each)")
    for name in rates:
        print(f"{name:<22}{median(rates[name]):>10,.0f}{median(pair_rates[name]):>10,.1f}")
    ratios = [a / b for a, b in zip(rates[OURS], rates[THEIRS])]
    print(f"ratio ours / theirs (tokens/s): median {median(ratios):.3f} "
          f"(per round: {', '.join(f'{r:.2f}' for r in ratios)})")
    scratch.cleanup()


if __name__ == "__main__":
    main()
