"""Faithfulness on the corpus models: our fake-quant outputs against onnxruntime's int8 kernels.

For each model (its ``correct`` case), one observation pass and one calibration (max with
percentile 0.99995, as the corpus configs resolve most often; per-tensor and per-channel
weights), then ``quant/faithful.py``: the configured scheme exported as a QDQ model with our
own scales and zero points, run by onnxruntime with its graph optimisations (QLinearConv,
QGemm, ...), compared with the simulator's outputs on the same samples. Printed per model:
output cosine with 7-bit weights (no kernel saturation possible) and with 8-bit weights
(the u8s8 saturation of x86 CPUs without VNNI shows here, and only here).

```
.venv/bin/python -m benchmarks.bench_faithful [--samples 8] [--model NAME]
```
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ptqtui.quant.calibrate import calibrate_simple
from ptqtui.quant.faithful import backend_agreement, cpu_has_vnni
from ptqtui.quant.observe import observe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus
from bench_thresholds import model_samples

FAITHFUL_COSINE = 0.999  # issue 13: simulator vs onnxruntime's int8 execution, per model


def measure(config: Path, n_cal: int, n_cmp: int) -> list[str]:
    start = time.perf_counter()
    sim, samples = model_samples(config, n_cal)
    obs = observe(sim, samples, keep=n_cmp)
    rows = []
    scheme = sim.scheme()
    for per_channel in (False, True):
        cal = calibrate_simple(sim, obs, "max", percentile=0.99995, per_channel=per_channel)
        try:
            b = backend_agreement(sim, cal, scheme, list(obs.kept))
        except ValueError as exc:  # per-channel QDQ needs opset 13: say so, keep the other row
            label = "per-channel" if per_channel else "per-tensor"
            rows.append(f"| {label} | not run: {exc} ||||")
            continue
        ok = "yes" if b.cosine_reduce_range >= FAITHFUL_COSINE else "NO"
        rows.append(
            f"| {'per-channel' if per_channel else 'per-tensor'} | {b.cosine_reduce_range:.5f} | "
            f"{b.cosine_full_range:.5f} | {b.saturation_loss:+.5f} | {ok} |"
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
        print("| weights | cosine, 7-bit weights | cosine, 8-bit weights | lost to the kernels | "
              ">= 0.999 |")  # fmt: skip
        print("|---|---|---|---|---|")
        try:
            print("\n".join(measure(config, args.calibration, args.samples)), flush=True)
        except Exception as exc:  # a model onnxruntime cannot quantize: say so and go on
            print(f"| failed | {type(exc).__name__}: {str(exc).splitlines()[0][:200]} |||| \n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
