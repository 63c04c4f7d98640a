"""The mix and bias-correction searches (issue 17): before and after, in one process.

    nice -n 19 .venv/bin/python -m benchmarks.bench_calib_search [--model ppocrv4_det] [--samples 4]

On a corpus case (``~/.cache/ptqtui-corpus/cases/<model>/correct``): one Simulator observes
the first ``--samples`` calibration images; the searches then run on the first one (as
``calibrate`` does), each side on the same simulator: ``before`` is the code before issue 17
(``tests/quant/reference_calibrate.py``, with the weights rounded again per calibration as
the simulator did), ``after`` the current ``search_mix`` / ``correct_bias``. Mix runs twice
per side: ``warm`` with the float prefix of the search sample in the prefix cache, ``cold``
with the references known but the prefix cache emptied (as after the analyses that keep
quantized prefixes). Printed per run: wall seconds, passes, segment sessions run (the old
bias correction's exposing passes ran every segment: passes x segments), the load, and
whether the answers (log, methods, ranges, bias deltas) are the same.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import types
from pathlib import Path

import numpy as np

CORPUS = Path.home() / ".cache" / "ptqtui-corpus"


def _old_rounded_weight(self, p, cal, reduce):  # the simulator's cache before issue 17
    from ptqtui.quant.qparams import weight_qmax, weight_scales
    from ptqtui.quant.segments import feed_digest

    key = ("old", id(cal), p.key, reduce)
    hit = self._wcache.get(key)
    if hit is not None and hit[0] is cal:
        return hit[1], hit[2]
    s = weight_scales(cal.weights[p.key], "int8", reduce)
    shape = [1] * self.graph.initializers[p.tensor].ndim
    shape[p.axis] = p.channels
    q = weight_qmax("int8", reduce)
    w = self._float_weight(p.tensor)
    rounded = (np.clip(np.round(w / s.reshape(shape)), -q, q) * s.reshape(shape)).astype(np.float32)
    digest = feed_digest(rounded)
    self._wcache[key] = (cal, rounded, digest)
    while len(self._wcache) > 4 * max(1, self._n_weights):
        self._wcache.popitem(last=False)
    return rounded, digest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="ppocrv4_det")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--only", choices=("mix", "bias"), help="one search")
    args = parser.parse_args()

    from ptqtui.analysis.context import model_ready
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.quant import calibrate as after
    from ptqtui.quant.observe import observe
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.quant.simulate import Simulator
    from ptqtui.request import Request
    from tests.quant import reference_calibrate as before

    config = CORPUS / "cases" / args.model / "correct" / "config.yaml"
    inputs = load_inputs(Request(config=config, report="json", quiet=True))
    convert = model_ready(inputs)
    xs = [
        convert(s.arrays) for s in itertools.islice(inputs.calibration.iter_samples(), args.samples)
    ]
    sim = Simulator(inputs.graph.model)
    obs = observe(sim, xs, keep=1)
    search = obs.kept[:1]
    scheme = sim.scheme(QuantSettings(calibration_type="mix"))
    after.calibrate_simple(sim, obs, "kl")  # kl thresholds cached on the statistics: not timed
    sim.reference(search[0])
    n_segs = len(sim.plan.segments) if sim.plan is not None else 1
    pts = sim.graph.points
    n_act = sum(pts[k].kind == "activation" for k in scheme.active())
    n_bias = sum(pts[k].kind == "bias" for k in scheme.active())
    print(
        f"{args.model}: {len(xs)} samples observed, search on 1; {n_segs} segments; "
        f"{n_act} activation points, {n_bias} bias nodes; load {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    def timed(label, fn, *, exposing=False, cold=False):
        sim._wcache.clear()
        if cold:
            sim.prefixes.clear()
        load = os.getloadavg()[0]
        p, r = sim.forward_passes, sim.segment_runs
        t = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t
        passes, runs = sim.forward_passes - p, sim.segment_runs - r
        note = ""
        if exposing:  # the old trials' exposing passes ran every segment, uncounted
            runs += (passes - 2) * n_segs
            note = " (exposing passes x segments)"
        print(
            f"  {label:<14} {dt:7.1f} s  passes {passes:4d}  segment runs {runs:5d}{note}  "
            f"load {load:.2f} -> {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        return out

    if args.only in (None, "mix"):
        print("mix (search_mix):", flush=True)
        got = {}
        for cold in (False, True):
            tag = "cold" if cold else "warm"
            got["before", tag] = timed(
                f"before {tag}",
                lambda: before.search_mix(sim, obs, scheme, search),
                cold=cold,
            )
            got["after", tag] = timed(
                f"after {tag}", lambda: after.search_mix(sim, obs, scheme, search), cold=cold
            )
        ref = got["before", "warm"]
        same = all(
            c.log == ref.log
            and c.point_methods == ref.point_methods
            and c.activations == ref.activations
            for c in got.values()
        )
        merged = sum(line.startswith("Merge_Info") for line in ref.log)
        print(f"  same answers: {same} ({merged} points searched)", flush=True)

    if args.only in (None, "bias"):
        print("bias correction (correct_bias on max):", flush=True)
        base = after.calibrate_simple(sim, obs, "max")
        bias_scheme = sim.scheme(QuantSettings(calibration_type="max", bias_correction=True))
        sim._rounded_weight = types.MethodType(_old_rounded_weight, sim)
        try:
            old = timed(
                "before",
                lambda: before.correct_bias(sim, base, bias_scheme, search),
                exposing=True,
            )
        finally:
            del sim._rounded_weight
        new = timed("after", lambda: after.correct_bias(sim, base, bias_scheme, search))
        worst = max(
            (
                float(np.max(np.abs(new.bias_deltas[k] - d) / np.maximum(np.abs(d), 1e-12)))
                for k, d in old.bias_deltas.items()
            ),
            default=0.0,
        )
        kept = sum(line.startswith("Bias_Correction_Info") for line in old.log)
        print(
            f"  same log: {new.log == old.log}; same nodes: "
            f"{set(new.bias_deltas) == set(old.bias_deltas)}; worst relative delta difference "
            f"{worst:.2g}; {kept} of {n_bias} corrections kept; {old.log[-1]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
