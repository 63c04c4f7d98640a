"""Fake-quant forward pass vs float forward pass.

    .venv/bin/python -m benchmarks.bench_forward

One sample at a time, median of interleaved repeats, on the demo model (if generated) and a
MobileNetV2 at 224x224 built here. Baselines: the float model in onnxruntime with graph
optimisation off (the simulator's own setting, so that names stay the model's) and with
every optimisation on (what a user's float deployment runs). Target: fake-quant at most 2x
the float pass.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from benchmarks.harness import emit, machine, run_worker


def worker(cfg: dict) -> None:
    import onnxruntime as ort

    from benchmarks.models import demo_model, mobilenet_v2, random_samples
    from ptqtui.quant.calibrate import calibrate
    from ptqtui.quant.observe import observe
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.quant.simulate import Simulator

    model = demo_model() if cfg["model"] == "demo" else mobilenet_v2()
    xs = list(random_samples(model, 4))
    sim = Simulator(model)
    settings = QuantSettings(calibration_type="max", per_channel=True)
    cal = calibrate(sim, observe(sim, xs), settings)
    scheme = sim.scheme(settings)
    sessions = {}
    for level in ("DISABLE_ALL", "ENABLE_ALL"):
        opts = ort.SessionOptions()
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_{level}")
        sessions[level] = ort.InferenceSession(model.SerializeToString(), opts)
    x = xs[0]
    runs = {
        "float, optimisation off": lambda: sessions["DISABLE_ALL"].run(None, x),
        "float, optimisation on": lambda: sessions["ENABLE_ALL"].run(None, x),
        "simulator, every point off": lambda: sim.run(x, None),
        "simulator, int8 fake-quant": lambda: sim.run(x, scheme, calibration=cal),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    for f in runs.values():
        f()
    for _ in range(cfg["repeats"]):
        for k, f in runs.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    emit({k: statistics.median(v) * 1000 for k, v in times.items()})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    from benchmarks.models import DEMO_MODEL

    print(f"machine: {machine()}")
    for model in (["demo"] if DEMO_MODEL.exists() else []) + ["mobilenet_v2"]:
        r = run_worker("benchmarks.bench_forward", {"model": model, "repeats": args.repeats})
        print(f"\n{model}: median of {args.repeats} interleaved runs, one sample")
        if "error" in r:
            print(f"  failed: {r['error']}")
            continue
        r.pop("peak_rss_mb", None)
        for k, v in r.items():
            print(f"  {k:30s} {v:8.2f} ms")
        fq = r["simulator, int8 fake-quant"]
        off, on = r["float, optimisation off"], r["float, optimisation on"]
        print(f"  fake-quant / float (optimisation off): {fq / off:.2f}x (target <= 2x)")
        print(f"  fake-quant / float (optimisation on):  {fq / on:.2f}x")


if __name__ == "__main__":
    main()
