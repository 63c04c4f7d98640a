"""The whole default diagnosis of corpus models vs one onnxruntime ``quantize_static`` run.

    .venv/bin/python -m benchmarks.bench_diagnosis [--model efficientnet_lite1 ppocrv4_det]
                                                   [--case correct] [--samples N]

For each model's corpus case (``benchmarks/corpus.py``): ``ptqtui.diagnosis.diagnose`` with
default options (stage times from the progress reports and the analysis' timing records,
forward passes, peak RSS), and ``onnxruntime.quantization.quantize_static`` (MinMax, QDQ,
its defaults otherwise) on the same model and the same model-ready calibration samples, each
in its own process. Issue 17's targets: a 224 classifier at most 10x the onnxruntime run; a
640 detector in at most 5 minutes and 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import emit, machine, run_worker

CORPUS = Path.home() / ".cache" / "ptqtui-corpus"


def _case_dir(model: str, case: str, samples: int | None) -> Path:
    """The case directory; with ``samples`` a temporary copy holding only the first N."""
    src = CORPUS / "cases" / model / case
    if samples is None:
        return src
    tmp = Path(tempfile.mkdtemp(prefix="bench_diag_")) / model
    tmp.mkdir(parents=True)
    (tmp / "calibration").mkdir()
    for f in sorted((src / "calibration").iterdir())[:samples]:
        (tmp / "calibration" / f.name).symlink_to(f)
    text = (src / "config.yaml").read_text()
    text = text.replace("../../../models/", f"{CORPUS / 'models'}/")
    (tmp / "config.yaml").write_text(text)
    return tmp


def worker(cfg: dict) -> None:
    from ptqtui.request import Request

    case = Path(cfg["case_dir"])
    request = Request(config=case / "config.yaml", report="json", quiet=True)
    if cfg["impl"] == "ptqtui":
        from ptqtui.diagnosis import diagnose
        from ptqtui.progress import Progress

        stages: dict[str, float] = {}
        order: list[str] = []
        last = [time.perf_counter(), None]

        def progress(p: Progress) -> None:
            now = time.perf_counter()
            if p.stage != last[1]:
                if last[1] is not None:
                    stages[last[1]] = stages.get(last[1], 0.0) + now - last[0]
                last[0], last[1] = now, p.stage
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                cpu = time.process_time()
                print(
                    f"[{now - t0:7.1f} s, cpu {cpu:7.1f} s, peak {rss:5.0f} MiB] {p.stage}",
                    file=sys.stderr,
                    flush=True,
                )
                if p.stage not in order:
                    order.append(p.stage)

        t0 = time.perf_counter()
        d = diagnose(request, progress=progress)
        total = time.perf_counter() - t0
        if last[1] is not None:
            stages[last[1]] = stages.get(last[1], 0.0) + time.perf_counter() - last[0]
        timings = []
        if d.analysis is not None:
            timings = [[t.stage, round(t.seconds, 2), t.passes] for t in d.analysis.timings]
        emit(
            {
                "seconds": round(total, 2),
                "stages": [[s, round(stages[s], 2)] for s in order],
                "timings": timings,
                "findings": sorted(f.code for f in d.findings),
            }
        )
        return
    if cfg["impl"] == "analyses":
        _analyses(request, cfg["s"])
        return
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from ptqtui.analysis.context import model_ready
    from ptqtui.inputs.resolve import load_inputs

    inputs = load_inputs(request)
    convert = model_ready(inputs)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(inputs.calibration.iter_samples())

        def get_next(self) -> dict[str, np.ndarray] | None:
            s = next(self.it, None)
            return None if s is None else convert(s.arrays)

    out = Path(tempfile.mkdtemp(prefix="bench_ort_")) / "q.onnx"
    t0 = time.perf_counter()
    quantize_static(
        str(inputs.graph.path),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
    )
    seconds = time.perf_counter() - t0
    shutil.rmtree(out.parent, ignore_errors=True)
    emit({"seconds": round(seconds, 2), "samples": len(inputs.calibration)})


def _analyses(request, s: int) -> None:
    """Node table, sensitivity and the curve alone, with S samples: passes, seconds, RSS, and
    the passes the same stages cost before issue 17 (3 N S + int16, N S)."""
    from ptqtui.analysis.accumulate import accumulated_error
    from ptqtui.analysis.context import build_context
    from ptqtui.analysis.measure import time_one_pass
    from ptqtui.analysis.nodes import node_table
    from ptqtui.analysis.sensitivity import INT16_TOP, sensitivity
    from ptqtui.inputs.resolve import load_inputs

    inputs = load_inputs(request)
    t0 = time.perf_counter()
    ctx = build_context(inputs, sensitivity_samples=s)
    out = {"calibration": round(time.perf_counter() - t0, 1)}
    ctx.pass_seconds = time_one_pass(ctx.sim, ctx.samples[0], ctx.scheme, ctx.calibration)
    out["pass_seconds"] = round(ctx.pass_seconds, 3)
    rows = node_table(ctx)
    sens = sensitivity(ctx, rows.records)
    curve = accumulated_error(ctx)
    n = sum(1 for r in sens.records if r.sensitivity_cosine is not None)
    out["nodes"] = n
    out["batch"] = [ctx.sim.batchable, ctx.sim.batch_size, ctx.sim.batch_note]
    for name, o in (("node table", rows), ("sensitivity", sens), ("curve", curve)):
        out[name] = [round(o.seconds, 1), o.passes]
    out["sensitivity before"] = 3 * n * s + (min(INT16_TOP, n) + 1) * s
    out["curve before"] = len(curve.records) and n * s
    out["curve points"] = len(curve.records)
    emit(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker")
    ap.add_argument("--model", nargs="+", default=["efficientnet_lite1", "ppocrv4_det"])
    ap.add_argument("--case", default="correct")
    ap.add_argument("--samples", type=int, default=None, help="first N calibration files only")
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument(
        "--analyses", type=int, metavar="S", help="only node table, sensitivity, curve with S"
    )
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return
    print(machine())
    for model in args.model:
        case = _case_dir(model, args.case, args.samples)
        if args.analyses:
            cfg = {"impl": "analyses", "case_dir": str(case), "s": args.analyses}
            print(model, run_worker("benchmarks.bench_diagnosis", cfg, 7200))
            continue
        ours = run_worker(
            "benchmarks.bench_diagnosis", {"impl": "ptqtui", "case_dir": str(case)}, 7200
        )
        ort = (
            {}
            if args.skip_ort
            else run_worker("benchmarks.bench_diagnosis", {"impl": "ort", "case_dir": str(case)})
        )
        print(f"\n## {model} ({args.case}, {args.samples or 'all'} samples)")
        if "error" in ours:
            print("ptqtui failed:", ours["error"])
            continue
        print(f"ptqtui diagnosis: {ours['seconds']:.1f} s, peak RSS {ours['peak_rss_mb']:.0f} MiB")
        print("| stage | seconds (progress) |")
        print("|---|---|")
        for s, sec in ours["stages"]:
            print(f"| {s} | {sec:.1f} |")
        print("| analysis stage | seconds | passes |")
        print("|---|---|---|")
        for s, sec, n in ours["timings"]:
            print(f"| {s} | {sec:.1f} | {n if n is not None else ''} |")
        print("findings:", ", ".join(ours["findings"]))
        if ort and "error" not in ort:
            print(
                f"onnxruntime quantize_static MinMax: {ort['seconds']:.1f} s, "
                f"peak RSS {ort['peak_rss_mb']:.0f} MiB, {ort['samples']} samples; "
                f"ratio ptqtui / onnxruntime: {ours['seconds'] / ort['seconds']:.1f}x"
            )
        elif ort:
            print("onnxruntime failed:", ort["error"])


if __name__ == "__main__":
    main()
