"""Per-node sensitivity: ptqtui's one-session what-ifs vs a quantize_static model per node.

    .venv/bin/python -m benchmarks.bench_sensitivity [--nodes-sampled K]

All N quantizable nodes of the model (the demo model if generated, and a MobileNetV2 at
224x224 built here), S = 8 samples, model output cosine. ptqtui: one Simulator, one
calibration, then N x S runs of the same session. The onnxruntime way: for each node,
``quantize_static(nodes_to_quantize=[node])`` (MinMax), a new InferenceSession and S runs;
timed on K nodes spread over the network and extrapolated to N (said in the output). Two
baselines: quantize_static calibrating on the same 8 samples (the cheapest it can be), and
on 100 samples (a usual calibration set; ptqtui calibrates once for all nodes, on any
number). Target: at least 20x faster. Each side runs in its own process, and
ptqtui's peak RSS there is that of a full calibration + sensitivity run.

    --whole            also run with whole passes (no graph segments), for comparison
    --workers 1 2      sensitivity with 1, then 2 worker processes
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks.harness import emit, machine, run_worker

S = 8


def worker(cfg: dict) -> None:
    from benchmarks.models import demo_model, mobilenet_v2, random_samples
    from ptqtui.analysis.measure import references
    from ptqtui.quant.calibrate import calibrate
    from ptqtui.quant.observe import observe
    from ptqtui.quant.scheme import QuantSettings
    from ptqtui.quant.simulate import Simulator

    model = demo_model() if cfg["model"] == "demo" else mobilenet_v2()
    xs = list(random_samples(model, S))
    t0 = time.perf_counter()
    sim = Simulator(model, segmented=cfg.get("segmented", True))
    settings = QuantSettings(calibration_type="max")
    scheme = sim.scheme(settings)
    nodes = [
        n.name
        for n in sim.graph.quantized_nodes()
        if scheme.placement.get(n.name) == "BPU"
        and any(k in scheme.active() for k in sim.graph.node_points(n.name))
    ]
    if cfg["impl"] == "ptqtui":
        from ptqtui.analysis.context import SimContext
        from ptqtui.analysis.nodes import node_table
        from ptqtui.analysis.sensitivity import sensitivity

        obs = observe(sim, xs, keep=S)
        cal = calibrate(sim, obs, settings, scheme=scheme)
        refs = references(sim, xs)
        setup = time.perf_counter() - t0
        ctx = SimContext(sim, obs, settings, cal, scheme, tuple(xs), tuple(refs), tuple(xs))
        ctx.workers = cfg.get("workers", 1)
        rows = node_table(ctx).records
        t1 = time.perf_counter()
        out = sensitivity(ctx, rows, split=False, int16=False)
        seconds = time.perf_counter() - t1
        emit(
            {
                "nodes": len(nodes),
                "setup": round(setup, 2),
                "seconds": round(seconds, 2),
                "passes": out.passes,
                "measured_nodes": len(nodes),
                "segments": len(sim.plan.segments) if sim.plan else 1,
                "skipped_segments": sim.skipped_segments,
                "segment_runs": sim.segment_runs,
            }
        )
        return
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from ptqtui.quant.metrics import cosine

    k = min(cfg["sampled"], len(nodes))
    picked = [nodes[round(i * (len(nodes) - 1) / max(1, k - 1))] for i in range(k)]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    flt = ort.InferenceSession(model.SerializeToString(), opts)
    out_name = flt.get_outputs()[0].name
    refs = [flt.run([out_name], x)[0] for x in xs]

    n_cal = cfg["cal_samples"]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(xs) if n_cal == S else random_samples(model, n_cal, seed=1)

        def get_next(self):
            return next(self.it, None)

    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "m.onnx"
        onnx.save(sim.graph.model, src)  # node names as the simulator sees them
        for node in picked:
            dst = Path(tmp) / "q.onnx"
            quantize_static(
                str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, nodes_to_quantize=[node]
            )
            sess = ort.InferenceSession(str(dst), opts)
            cos = [cosine(r, sess.run([out_name], x)[0]) for r, x in zip(refs, xs, strict=True)]
            float(np.mean(cos))
    per_node = (time.perf_counter() - t1) / k
    emit(
        {
            "nodes": len(nodes),
            "measured_nodes": k,
            "per_node": round(per_node, 3),
            "seconds": round(per_node * len(nodes), 2),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--nodes-sampled", type=int, default=6)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--whole", action="store_true", help="also run without segments")
    parser.add_argument("--skip-ort", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    from benchmarks.models import DEMO_MODEL

    print(f"machine: {machine()}")
    for model in (["demo"] if DEMO_MODEL.exists() else []) + ["mobilenet_v2"]:
        print(f"\n{model}: sensitivity of all quantizable nodes, S = {S}")
        variants = [(True, w) for w in args.workers]
        if args.whole:
            variants.insert(0, (False, 1))
        runs = {}
        for segmented, workers in variants:
            cfg = {"model": model, "impl": "ptqtui", "segmented": segmented, "workers": workers}
            ours = run_worker("benchmarks.bench_sensitivity", cfg)
            if "error" in ours:
                print(f"  failed: {ours['error']}")
                continue
            runs[(segmented, workers)] = ours
            n = ours["nodes"]
            how = "segments" if segmented else "whole passes"
            print(
                f"  ptqtui ({how}, {ours['segments']} segments, {workers} worker(s)): {n} nodes "
                f"x {S} samples: {ours['seconds']:.2f} s, {ours['passes']} passes "
                f"(+ {ours['setup']:.2f} s calibration), segment runs {ours['segment_runs']}, "
                f"skipped {ours['skipped_segments']}, peak RSS {ours['peak_rss_mb']:.0f} MiB"
            )
        if not runs or args.skip_ort:
            continue
        ours = runs[max(runs, key=lambda k: (k[0], k[1] == 1))]
        n = ours["nodes"]
        for n_cal in (S, 100):
            theirs = run_worker(
                "benchmarks.bench_sensitivity",
                {
                    "model": model,
                    "impl": "onnxruntime",
                    "sampled": args.nodes_sampled,
                    "cal_samples": n_cal,
                },
            )
            if "error" in theirs:
                print(f"  onnxruntime, calibrating on {n_cal}: failed: {theirs['error']}")
                continue
            print(
                f"  onnxruntime, quantize_static calibrating on {n_cal} samples per node: "
                f"{theirs['per_node']:.2f} s per node (timed on {theirs['measured_nodes']} "
                f"nodes, extrapolated to {n}): {theirs['seconds']:.1f} s; ptqtui is "
                f"{theirs['seconds'] / ours['seconds']:.1f}x faster (target >= 20x)"
            )


if __name__ == "__main__":
    main()
