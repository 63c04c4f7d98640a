"""The observation pass (issue 17): the statistics' update before and after, in one process.

    nice -n 19 .venv/bin/python -m benchmarks.bench_observe [--model ppocrv4_det] [--samples 20]

On a corpus case (``~/.cache/ptqtui-corpus/cases/<model>/correct``), the first ``--samples``
calibration images go through ``observe`` three times per round: with the whole-array update
it had before issue 17 on one thread (``before``), with the current update on one thread
(``after-1``) and on ``stats_threads()`` threads (``after``), in turn so that all see the same
load. Printed per pass: wall and CPU seconds, the seconds inside ``TensorStats.update``
(summed over threads), and whether the passes' statistics are identical (bit for bit).
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from pathlib import Path

import numpy as np

from ptqtui.quant import observe as observe_mod
from ptqtui.quant.observe import TensorStats
from tests.quant.reference_observe import WholeArrayStats

CORPUS = Path.home() / ".cache" / "ptqtui-corpus"


def _timed(cls: type[TensorStats], spent: list[float]) -> type[TensorStats]:
    """``cls`` whose update adds its wall and CPU seconds to ``spent`` (summed over threads)."""
    lock = threading.Lock()

    class Timed(cls):  # type: ignore[misc, valid-type]
        def update(self, x: np.ndarray) -> None:
            t, c = time.perf_counter(), time.thread_time()
            super().update(x)
            with lock:
                spent[0] += time.perf_counter() - t
                spent[1] += time.thread_time() - c

    return Timed


def _same(a: dict[str, TensorStats], b: dict[str, TensorStats]) -> bool:
    scalars = ("count", "min", "max", "hist_max", "zeros_pending", "nan_count")
    for t, s in a.items():
        o = b[t]
        if [getattr(s, k) for k in scalars] != [getattr(o, k) for k in scalars]:
            return False
        if not np.array_equal(s.hist, o.hist):
            return False
        if (s.ch_min is None) != (o.ch_min is None):
            return False
        if s.ch_min is not None and not (
            np.array_equal(s.ch_min, o.ch_min) and np.array_equal(s.ch_max, o.ch_max)
        ):
            return False
    return True


# side: (statistics class, threads updating them); "before" is the code before issue 17
SIDES = {
    "before": (WholeArrayStats, 1),
    "after-1": (TensorStats, 1),
    "after": (TensorStats, None),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="ppocrv4_det")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=SIDES, help="one side (for a profiler)")
    args = parser.parse_args()

    from ptqtui.analysis.context import model_ready
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.quant.simulate import Simulator
    from ptqtui.request import Request

    config = CORPUS / "cases" / args.model / "correct" / "config.yaml"
    inputs = load_inputs(Request(config=config, report="json", quiet=True))
    convert = model_ready(inputs)
    xs = [
        convert(s.arrays) for s in itertools.islice(inputs.calibration.iter_samples(), args.samples)
    ]
    sim = Simulator(inputs.graph.model)
    observe_mod.observe(sim, xs[:1], keep=1)  # sessions built, first-run costs paid
    sides = {k: v for k, v in SIDES.items() if args.only in (None, k)}
    print(f"{args.model}, {len(xs)} samples, load {os.getloadavg()[0]:.2f}", flush=True)
    seen: dict[str, dict[str, TensorStats]] = {}
    for r in range(args.rounds):
        for side, (cls, threads) in sides.items():
            spent = [0.0, 0.0]
            observe_mod.TensorStats = _timed(cls, spent)  # observe() builds one per tensor
            try:
                t, c = time.perf_counter(), time.process_time()
                obs = observe_mod.observe(sim, xs, keep=1, threads=threads)
                wall, cpu = time.perf_counter() - t, time.process_time() - c
            finally:
                observe_mod.TensorStats = TensorStats
            seen[side] = obs.stats
            print(
                f"round {r + 1} {side:8s}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, "
                f"update {spent[0]:6.2f} s wall ({100 * spent[0] / wall:4.1f} %), "
                f"{spent[1]:6.2f} s CPU ({100 * spent[1] / cpu:4.1f} %), "
                f"load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    if len(seen) > 1:
        first, *rest = seen.values()
        print("statistics identical:", all(_same(first, other) for other in rest))


if __name__ == "__main__":
    main()
