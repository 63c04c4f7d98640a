"""Per-tensor thresholds, ours against onnxruntime's calibrators, on the corpus models.

For every activation point of a model, the same float activations (one streaming pass over a
case's calibration samples) go to our ``TensorStats`` and to onnxruntime's
``HistogramCollector``; then, per method:
- ``max``: our max |x| against ``MinMax`` (symmetric: max(|min|, |max|));
- ``percentile``: our ``max_percentile`` 0.99999 against ``Percentile`` (symmetric, 2048 bins,
  99.999);
- ``kl``: our kl against ``Entropy`` (2048 bins, 128 quantized bins, onnxruntime-style: a
  signed histogram with candidate windows symmetric around zero).
It prints the worst relative disagreements per method, and the output cosine (our simulator,
all int8, per-tensor weights) with our thresholds and with onnxruntime's.

```
.venv/bin/python -m benchmarks.bench_thresholds [--case correct] [--model efficientnet_lite1]
```
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

import numpy as np

from ptqtui.quant.calibrate import Calibration, calibrate_simple, kl_threshold, output_cosine
from ptqtui.quant.observe import Observation, TensorStats
from ptqtui.quant.qparams import ActRange

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

PERCENTILE = 0.99999
ORT_BINS = 2048
ORT_QUANTIZED_BINS = 128
COSINE_SAMPLES = 16


def model_samples(config: Path, limit: int | None = None):
    """The simulator, the model-ready samples of a case (as ptqtui reads them)."""
    from ptqtui.analysis.context import model_ready
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.quant.simulate import Simulator
    from ptqtui.request import Request

    inputs = load_inputs(Request(config=config))
    convert = model_ready(inputs)
    sim = Simulator(inputs.graph.model)
    samples = []
    for s in inputs.calibration.iter_samples():
        samples.append(convert(s.arrays))
        if limit is not None and len(samples) >= limit:
            break
    return sim, samples


def collect(sim, samples):
    """Our observation and onnxruntime's three collectors, fed the same activations."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    tensors = sim.observed_tensors()
    stats = {t: TensorStats() for t in tensors}
    entropy = HistogramCollector("entropy", False, ORT_BINS, ORT_QUANTIZED_BINS, None, None)
    pct = HistogramCollector("percentile", True, ORT_BINS, None, PERCENTILE * 100, None)
    lo = {t: np.inf for t in tensors}
    hi = {t: -np.inf for t in tensors}
    for s in samples:
        values = sim.run_float(s, outputs=tensors)
        for t in tensors:
            v = np.asarray(values[t], np.float32)
            stats[t].update(v)
            lo[t], hi[t] = min(lo[t], float(v.min())), max(hi[t], float(v.max()))
        with contextlib.redirect_stdout(io.StringIO()):  # onnxruntime prints per call
            entropy.collect({t: values[t].astype(np.float32) for t in tensors})
            pct.collect({t: values[t].astype(np.float32) for t in tensors})
    obs = Observation(stats, len(samples), tuple(samples[:COSINE_SAMPLES]))
    ort_max = {t: max(abs(lo[t]), abs(hi[t])) for t in tensors}
    with contextlib.redirect_stdout(io.StringIO()):
        ent, pc = entropy.compute_entropy(), pct.compute_percentile()
    ort_ent = {t: float(max(abs(v[0]), abs(v[1]))) for t, v in ent.items()}
    ort_pct = {t: float(max(abs(v[0]), abs(v[1]))) for t, v in pc.items()}
    return obs, {"max": ort_max, "percentile": ort_pct, "kl": ort_ent}


def _kl_zero_bin_kept(sim, obs) -> dict[str, ActRange]:
    acts = {}
    for p in sim.points:
        if p.kind in ("activation", "output") and p.tensor in obs.stats:
            st = obs.stats[p.tensor]
            t = kl_threshold(st.hist, st.bin_width, flatten_zero_bin=False) if st.hist_max else 0.0
            t = min(t, st.abs_max)
            acts[p.key] = ActRange(-t, t, True)
    return acts


def _kl_no_lobe_guard(sim, obs) -> dict[str, ActRange]:
    acts = {}
    for p in sim.points:
        if p.kind in ("activation", "output") and p.tensor in obs.stats:
            st = obs.stats[p.tensor]
            t = kl_threshold(st.hist, st.bin_width) if st.hist_max else 0.0
            t = min(t, st.abs_max)
            acts[p.key] = ActRange(-t, t, True)
    return acts


def with_thresholds(sim, cal: Calibration, thresholds: dict[str, float]) -> Calibration:
    acts = {}
    for p in sim.points:
        if p.key in cal.activations and p.tensor in thresholds:
            t = thresholds[p.tensor]
            acts[p.key] = ActRange(-t, t, True)
    return cal.replace(activations={**cal.activations, **acts})


def compare(name: str, config: Path, top: int = 5, limit: int | None = None) -> list[str]:
    start = time.perf_counter()
    sim, samples = model_samples(config, limit)
    obs, theirs = collect(sim, samples)
    scheme = sim.scheme()
    lines = [f"### {name} ({len(samples)} samples, {len(obs.stats)} tensors)", ""]
    lines += [
        "| method | tensors within 1 % | within 10 % | worst tensor | ours | onnxruntime | "
        "cosine ours | cosine onnxruntime |",
        "|---|---|---|---|---|---|---|---|",
    ]
    worst_rows = []
    for method in ("max", "percentile", "kl", "kl, no lobe guard", "kl, zero bin kept"):
        if method == "kl":
            cal = calibrate_simple(sim, obs, "kl")
        elif method == "kl, no lobe guard":  # before the negative-lobe clipping guard
            cal = calibrate_simple(sim, obs, "kl")
            cal = cal.replace(activations=_kl_no_lobe_guard(sim, obs))
        elif method.startswith("kl,"):  # the kl of ptqtui before the zero-bin fix
            cal = calibrate_simple(sim, obs, "kl")
            cal = cal.replace(activations=_kl_zero_bin_kept(sim, obs))
        else:
            pct = PERCENTILE if method == "percentile" else None
            cal = calibrate_simple(sim, obs, "max", percentile=pct)
        ours = {}
        for p in sim.points:
            if p.key in cal.activations:
                ours[p.tensor] = cal.activations[p.key].threshold
        rel = {}
        for t, v in ours.items():
            ref = theirs[method.split(",")[0]].get(t)
            if ref is None or ref <= 0:
                continue
            rel[t] = (v - ref) / ref
        n = len(rel)
        within1 = sum(abs(r) <= 0.01 for r in rel.values())
        within10 = sum(abs(r) <= 0.10 for r in rel.values())
        worst = sorted(rel, key=lambda t: -abs(rel[t]))[:top]
        c_ours = output_cosine(sim, obs.kept, scheme, cal)
        ref_method = method.split(",")[0]
        c_theirs = output_cosine(
            sim, obs.kept, scheme, with_thresholds(sim, cal, theirs[ref_method])
        )
        w = worst[0] if worst else "-"
        lines.append(
            f"| {method} | {within1}/{n} | {within10}/{n} | `{w[-40:]}` | "
            f"{ours.get(w, float('nan')):.4g} | {theirs[ref_method].get(w, float('nan')):.4g} | "
            f"{c_ours:.4f} | {c_theirs:.4f} |"
        )
        for t in worst:
            worst_rows.append(
                f"| {method} | `{t[-48:]}` | {ours[t]:.4g} | {theirs[ref_method][t]:.4g} | "
                f"{100 * rel[t]:+.1f} % |"
            )
    lines += ["", "| method | tensor | ours | onnxruntime | difference |", "|---|---|---|---|---|"]
    lines += worst_rows
    lines.append(f"\n({time.perf_counter() - start:.0f} s)\n")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=corpus.DEFAULT_CACHE)
    ap.add_argument("--case", default="correct")
    ap.add_argument("--model", action="append")
    ap.add_argument("--samples", type=int, default=32, help="calibration samples (default 32)")
    args = ap.parse_args(argv)
    for name in corpus.MODELS:
        if args.model and name not in args.model:
            continue
        config = args.cache / "cases" / name / args.case / "config.yaml"
        if not config.exists():
            print(f"{name}: not built (benchmarks/corpus.py --build)", file=sys.stderr)
            continue
        print("\n".join(compare(name, config, limit=args.samples)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
