"""Per-task embedding and fitting times of ``task=eval``, the plain path against the fast one, with both's scores.

    python benchmarks/eval_speed.py [--eval all] [--tasks MR CR ...] [--settings plain fast]
                                    [--max-examples N] [--model PATH] [--json results.json]

Settings (``eval`` overrides, composed from ``conf/`` as ``run.py`` composes them):
  plain  float32 encoder, scikit-learn's cold-started fits in this one process (``GridSearchCV``'s results exactly)
  fast   the defaults: bfloat16 where the device has it natively, warm starts, one fitting process per core
Each setting runs the evaluation suite as ``task=eval`` does (a sentence that several tasks share is embedded
once, by the first task); a task's fit time is its time less its embedding (``task_seconds`` in the results).
Prints one table (task | per setting: embed s, fit s, score | score difference) and the totals. Timings are the
point: run it alone on the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import torch
from training_harness import compose_config

from declutr.config.instantiate import build
from declutr.encoder import Encoder
from declutr.eval.suite import EvalSuite
from declutr.tasks.eval import evaluate

SETTINGS = {
    "plain": ["eval.precision=float32", "eval.protocol.warm_start=false", "eval.protocol.n_jobs=1"],
    "fast": [],
}


def measure(setting: str, eval_option: str, tasks: list[str] | None, max_examples: int | None,
            model: str | None) -> dict:
    """One setting: per task, the seconds spent embedding and fitting and every score."""
    with tempfile.TemporaryDirectory() as scratch:
        overrides = ["task=eval", f"eval={eval_option}", *SETTINGS[setting]]
        cfg = compose_config(overrides + ([f"eval.model={model}"] if model else []), scratch)
    options = cfg.eval
    if "protocol" in options:
        options.protocol.progress = False  # the table is the output
    chosen = [task for task in build(options.tasks).values() if tasks is None or task.name in tasks]
    unknown = set(tasks or []) - {task.name for task in chosen}
    if unknown:
        raise SystemExit(f"--tasks {' '.join(sorted(unknown))}: not in eval={eval_option}")
    result, precision = evaluate(EvalSuite(chosen, max_examples, options.seed), Encoder(str(options.model)), options,
                                 progress=False)
    rows = [{"task": name, "embed_s": timing["embed"], "fit_s": timing["fit"],
             "scores": {s.key: s.value for s in result.scores if s.task == name}}
            for name, timing in result.task_seconds.items()]
    processes = {task.protocol.n_jobs for task in chosen if hasattr(task, "protocol")}
    return {"setting": setting, "overrides": SETTINGS[setting], "precision": precision,
            "n_jobs": processes.pop() if processes else None, "tasks": rows, "seconds": result.seconds,
            "sentences": result.sentences, "sentences_per_s": result.sentences / result.embed_seconds}


def table(results: list[dict]) -> str:
    """One row per task: embed s, fit s and the headline score per setting, then the last minus the first score."""
    head = f"{'task':<10}" + "".join(f"{r['setting'] + ' embed s':>16}{'fit s':>9}{'score':>9}" for r in results)
    lines = [head + (f"{'diff':>8}" if len(results) > 1 else ""), "-" * (len(head) + 8)]
    for i, row in enumerate(results[0]["tasks"]):
        cells = [r["tasks"][i] for r in results]
        main = [next(iter(c["scores"].values())) for c in cells]
        line = f"{row['task']:<10}" + "".join(f"{c['embed_s']:>16.1f}{c['fit_s']:>9.1f}{m:>9.2f}"
                                              for c, m in zip(cells, main))
        lines.append(line + (f"{main[-1] - main[0]:>+8.2f}" if len(results) > 1 else ""))
    total = f"{'total':<10}" + "".join(f"{sum(c['embed_s'] for c in r['tasks']):>16.1f}"
                                       f"{sum(c['fit_s'] for c in r['tasks']):>9.1f}{'':>9}" for r in results)
    lines.append(total)
    lines += [f"{r['setting']}: {r['seconds']:,.0f} s in all" for r in results]
    lines += [f"{r['setting']}: {r['precision']} encoder, {r['sentences']:,} sentences at {r['sentences_per_s']:.0f}/s, "
              f"fits in {r['n_jobs']} process(es)" for r in results]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", default="all", help="the eval=<option> whose tasks and protocol are measured")
    parser.add_argument("--tasks", nargs="+", help="task names to measure (default: all of the option's)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--max-examples", type=int, help="cap every split (eval.max_examples)")
    parser.add_argument("--model", help="eval.model (default: the config's, all-MiniLM-L6-v2)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()
    print(" ".join(["eval_speed.py", *sys.argv[1:]]))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    results = [measure(s, args.eval, args.tasks, args.max_examples, args.model) for s in args.settings]
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"command": sys.argv, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
