"""int16 on the corpus models: never worse than int8, on any node and everywhere.

For each model (its ``correct`` case): one observation pass, a max-percentile calibration
(per-channel weights), then the output cosine of all int8, of all int16
(``set_all_nodes_int16``), and of every NPU node widened alone (``widen_node``: as
``node_info`` InputType/OutputType int16 asks). The noise is the standard error of the mean
per-sample cosine of all int8; a node "loses" when its mean int16 - int8 difference is below
minus twice the standard error of its per-sample (paired) differences.

```
.venv/bin/python -m benchmarks.bench_int16 [--samples 8] [--model NAME]
```
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ptqtui.quant.calibrate import calibrate_simple
from ptqtui.quant.metrics import cosine
from ptqtui.quant.observe import observe
from ptqtui.quant.scheme import QuantSettings, widen_node

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
from bench_thresholds import model_samples


def per_sample(sim, xs, scheme, cal) -> np.ndarray:
    outs = sim.run_batch(xs, scheme, calibration=cal)
    vals = []
    for x, o in zip(xs, outs, strict=True):
        ref = sim.reference(x)
        vals.append(np.nanmean([cosine(ref[n], o[n]) for n in sim.outputs]))
    return np.array(vals)


def measure(config: Path, n_cal: int, n_cmp: int, max_nodes: int) -> str:
    start = time.perf_counter()
    sim, samples = model_samples(config, n_cal)
    obs = observe(sim, samples, keep=n_cmp)
    cal = calibrate_simple(sim, obs, "max", percentile=0.99995, per_channel=True)
    xs = list(obs.kept)
    scheme = sim.scheme()
    c8 = per_sample(sim, xs, scheme, cal)
    noise = float(np.std(c8, ddof=1) / np.sqrt(len(c8))) if len(c8) > 1 else 0.0
    c16 = per_sample(sim, xs, sim.scheme(QuantSettings(set_all_nodes_int16=True)), cal)
    nodes = [n.name for n in sim.graph.quantized_nodes() if scheme.placement.get(n.name) == "BPU"]
    nodes = nodes[:max_nodes]
    worst, worst_node, losing, worst_se = 0.0, "-", 0, 0.0
    for node in nodes:
        d = per_sample(sim, xs, widen_node(sim.graph, scheme, node), cal) - c8
        gain = float(d.mean())
        # paired noise: the standard error of this node's per-sample differences
        paired = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        if gain < worst:
            worst, worst_node, worst_se = gain, node, paired
        if gain < -max(2 * paired, 1e-4):
            losing += 1
    return (
        f"| {c8.mean():.5f} | {c16.mean():.5f} | {noise:.5f} | {len(nodes)} | {losing} | "
        f"{worst:+.5f} ± {worst_se:.5f} `{worst_node[-40:]}` | "
        f"{time.perf_counter() - start:.0f} s |"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=corpus.DEFAULT_CACHE)
    ap.add_argument("--model", action="append")
    ap.add_argument("--calibration", type=int, default=32)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--nodes", type=int, default=1000, help="at most this many nodes")
    args = ap.parse_args(argv)
    print("| model | all int8 | all int16 | noise of all int8 | nodes | int16 loses beyond 2 SE | "
          "worst int16 - int8 | time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name in corpus.MODELS:
        if args.model and name not in args.model:
            continue
        config = args.cache / "cases" / name / "correct" / "config.yaml"
        if not config.exists():
            continue
        row = measure(config, args.calibration, args.samples, args.nodes)
        print(f"| {name} {row}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
