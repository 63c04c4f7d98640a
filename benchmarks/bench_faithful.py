"""Faithfulness on the corpus models: our fake-quant outputs against onnxruntime's int8 kernels.

For each model (its ``correct`` case), one observation pass and one calibration (max with
percentile 0.99995, as the corpus configs resolve most often; per-tensor and per-channel
weights), then ``quant/faithful.py``: the configured scheme exported as a QDQ model with our
own scales and zero points, run by onnxruntime with its graph optimisations (QLinearConv,
QGemm, ...), compared with the simulator's outputs on the same samples. Printed per model:
the export run as float QDQ ops (basic optimisations only: must equal ours, which checks
placement, scales, zero points and bias rounding); the integer kernels with 7-bit weights (no
saturation possible), at the outputs and at the logits of a Sigmoid/Softmax head; the ulp
control (our simulator against itself with every weight threshold moved one float32 ulp: what
float rounding alone does on this model); the kernels with 8-bit weights (the u8s8 saturation
of x86 CPUs without VNNI shows here, and only here). Faithful: kernels >= 0.999, or, where
float rounding alone already moves the output below 0.999, no further than the control.

```
.venv/bin/python -m benchmarks.bench_faithful [--samples 8] [--model NAME]
```
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ptqtui.quant.calibrate import calibrate_simple
from ptqtui.quant.faithful import Agreement, compare, cpu_has_vnni, ulp_control
from ptqtui.quant.observe import observe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
from bench_thresholds import model_samples

FAITHFUL_COSINE = 0.999  # issue 13: simulator vs onnxruntime's int8 execution, per model
EXACT_COSINE = 0.99999  # the float QDQ execution of the export: same arithmetic as ours


def within_control(kernels: Agreement, control: Agreement) -> bool:
    """Fair criterion (docs/thresholds.md): the integer kernels differ from the simulator no
    more than the simulator differs from itself under a float32-ulp move of its weights (paired
    over the same samples, within two standard errors of the per-sample differences)."""
    d = np.array(kernels.per_sample) - np.array(control.per_sample)
    d = d[~np.isnan(d)]
    if d.size == 0:
        return False
    se = float(d.std(ddof=1) / np.sqrt(d.size)) if d.size > 1 else 0.0
    return float(d.mean()) >= -2 * se


def verdict(reference: Agreement, kernels: Agreement, control: Agreement) -> str:
    if reference.outputs < EXACT_COSINE:
        return "NO (ours differs)"
    if kernels.outputs >= FAITHFUL_COSINE:
        return "yes"
    if control.outputs < FAITHFUL_COSINE and within_control(kernels, control):
        return "yes, within the ulp control"
    return "NO"


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.5f}"


def measure(config: Path, n_cal: int, n_cmp: int) -> list[str]:
    start = time.perf_counter()
    sim, samples = model_samples(config, n_cal)
    obs = observe(sim, samples, keep=n_cmp)
    rows = []
    scheme = sim.scheme()
    kept = list(obs.kept)
    for per_channel in (False, True):
        label = "per-channel" if per_channel else "per-tensor"
        cal = calibrate_simple(sim, obs, "max", percentile=0.99995, per_channel=per_channel)
        reduced = cal.replace(reduce_range_weights=True)
        try:
            ref = compare(sim, reduced, scheme, kept, kernels=False)
            k7 = compare(sim, reduced, scheme, kept)
            k8 = compare(sim, cal.replace(reduce_range_weights=False), scheme, kept)
        except ValueError as exc:  # per-channel QDQ needs opset 13: say so, keep the other row
            rows.append(f"| {label} | not run: {exc} |||||||")
            continue
        ctl = ulp_control(sim, reduced, scheme, kept)
        rows.append(
            f"| {label} | {ref.outputs:.6f} | {k7.outputs:.5f} | {_f(k7.logits)} | "
            f"{ctl.outputs:.5f} | {_f(ctl.logits)} | {k8.outputs:.5f} | "
            f"{k7.outputs - k8.outputs:+.5f} | {verdict(ref, k7, ctl)} |"
        )
    rows.append(f"\n({len(samples)} calibration samples, {len(obs.kept)} compared, "
                f"{time.perf_counter() - start:.0f} s)")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=corpus.DEFAULT_CACHE)
    ap.add_argument("--model", action="append")
    ap.add_argument("--calibration", type=int, default=32, help="calibration samples")
    ap.add_argument("--samples", type=int, default=8, help="samples compared")
    args = ap.parse_args(argv)
    print(f"CPU with VNNI: {cpu_has_vnni()}\n")
    for name in corpus.MODELS:
        if args.model and name not in args.model:
            continue
        config = args.cache / "cases" / name / "correct" / "config.yaml"
        if not config.exists():
            print(f"{name}: not built (benchmarks/corpus.py --build)", file=sys.stderr)
            continue
        print(f"### {name}\n")
        print("| weights | float QDQ | kernels | kernels, logits | ulp control | "
              "ulp control, logits | kernels, 8-bit weights | lost to saturation | "
              "faithful |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        try:
            print("\n".join(measure(config, args.calibration, args.samples)), flush=True)
        except Exception as exc:  # a model onnxruntime cannot quantize: say so and go on
            print(f"| failed | {type(exc).__name__}: {str(exc).splitlines()[0][:200]} |||| \n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
