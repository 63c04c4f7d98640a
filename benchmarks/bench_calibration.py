"""Calibration memory and time: ptqtui's streaming observation vs onnxruntime's calibrators.

    .venv/bin/python -m benchmarks.bench_calibration [--quick]

For each model (the demo model if generated, and a MobileNetV2 at 224x224 built here) and
each method (kl = entropy, percentile), at 100 and 400 samples: ptqtui (Simulator + one
streaming observation pass + thresholds) vs ``onnxruntime.quantization.quantize_static``
with ``CalibrationMethod.Entropy`` / ``Percentile`` (its defaults otherwise), each in its own
process. Printed: peak RSS, wall time, and the ratios. Targets: our peak RSS grows < 10 %
from 100 to 400 samples, is at least 5x below onnxruntime's at 100, and our time is lower.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.harness import emit, machine, run_worker

ORT_SAFE_MB = 9000  # onnxruntime runs whose projected RSS exceeds this are not started


def worker(cfg: dict) -> None:
    from benchmarks.models import demo_model, mobilenet_v2, random_samples

    model = demo_model() if cfg["model"] == "demo" else mobilenet_v2()
    n = cfg["samples"]
    t0 = time.perf_counter()
    if cfg["impl"] == "ptqtui":
        from ptqtui.quant.calibrate import calibrate_simple
        from ptqtui.quant.observe import observe
        from ptqtui.quant.simulate import Simulator

        sim = Simulator(model)
        obs = observe(sim, random_samples(model, n), keep=1)
        if cfg["method"] == "kl":
            calibrate_simple(sim, obs, "kl")
        else:
            calibrate_simple(sim, obs, "max", percentile=0.99999)
    else:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            quantize_static,
        )

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = random_samples(model, n)

            def get_next(self):
                return next(self.it, None)

        method = (
            CalibrationMethod.Entropy if cfg["method"] == "kl" else CalibrationMethod.Percentile
        )
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "m.onnx"
            import onnx

            onnx.save(model, src)
            quantize_static(
                str(src),
                str(Path(tmp) / "q.onnx"),
                Reader(),
                quant_format=QuantFormat.QDQ,
                calibrate_method=method,
            )
    emit({"seconds": round(time.perf_counter() - t0, 2)})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--quick", action="store_true", help="demo model only, 100/400")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    from benchmarks.models import DEMO_MODEL

    models = (["demo"] if DEMO_MODEL.exists() else []) + ([] if args.quick else ["mobilenet_v2"])
    print(f"machine: {machine()}")
    for model in models:
        for method in ("kl", "percentile"):
            res = {}
            for impl in ("ptqtui", "onnxruntime"):
                for n in (100, 400):
                    if impl == "onnxruntime" and n == 400 and "onnxruntime/100" in res:
                        projected = res["onnxruntime/100"].get("peak_rss_mb", 0) * 4
                        if projected > ORT_SAFE_MB:
                            res[f"{impl}/{n}"] = {
                                "error": f"not run: projected {projected / 1024:.1f} GiB on a "
                                "shared machine (it keeps every activation of every sample)"
                            }
                            continue
                    res[f"{impl}/{n}"] = run_worker(
                        "benchmarks.bench_calibration",
                        {"model": model, "method": method, "impl": impl, "samples": n},
                    )
            print(f"\n{model}, {method}")
            for key, r in res.items():
                if "error" in r:
                    print(f"  {key:18s} {r['error']}")
                else:
                    print(
                        f"  {key:18s} peak RSS {r['peak_rss_mb']:8.1f} MiB  {r['seconds']:7.2f} s"
                    )
            ours100, ours400 = res["ptqtui/100"], res["ptqtui/400"]
            theirs100 = res["onnxruntime/100"]
            if "error" not in ours100 and "error" not in ours400:
                growth = ours400["peak_rss_mb"] / ours100["peak_rss_mb"] - 1
                print(
                    f"  ours, RSS growth 100 -> 400 samples: {100 * growth:+.1f} % (target < 10 %)"
                )
            if "error" not in ours100 and "error" not in theirs100:
                mem = theirs100["peak_rss_mb"] / ours100["peak_rss_mb"]
                speed = theirs100["seconds"] / ours100["seconds"]
                print(
                    f"  at 100 samples: onnxruntime uses {mem:.1f}x our RSS (target >= 5x), "
                    f"takes {speed:.1f}x our time (target > 1x)"
                )


if __name__ == "__main__":
    main()
