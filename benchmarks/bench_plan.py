"""Plan properties on the development corpus: the checks of the demo tests, on real models.

For each case (default: the ``correct``, ``bgr``, ``range01_nhwc`` and ``double_norm`` cases
of efficientnet_lite1, efficientnet_lite2 and ppocrv4_rec), ptqtui runs as a user would
(``--report json``, small budgets: ``--sensitivity-samples 2``, the first ``--samples``
calibration files through ``--cal-dir``), the JSON is read back as a Diagnosis, and every
property of ``ptqtui/advise/properties.py`` is checked: measured steps say on what, the plan
starts at the summary and each step where the last ended, a pipeline fix is compared on the
same reference, no recommended step loses beyond the noise, the headline acts, and no node's
int16 gain is below minus the noise. Prints a table case x property (ok, or the violations).

```
nice -n 10 .venv/bin/python -m benchmarks.bench_plan [--models ...] [--cases ...] [--samples 16]
```
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ptqtui.advise.properties import Property, Violation, check
from ptqtui.diagnosis import Diagnosis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpus

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("efficientnet_lite1", "efficientnet_lite2", "ppocrv4_rec")
CASES = ("correct", "bgr", "range01_nhwc", "double_norm")


def calibration_subset(case_dir: Path, n: int, into: Path) -> Path | None:
    """The first ``n`` calibration files of a case, linked into ``into`` (None: no folder)."""
    folder = case_dir / "calibration"
    if not folder.is_dir():
        return None
    into.mkdir(parents=True, exist_ok=True)
    for f in sorted(p for p in folder.iterdir() if p.is_file())[:n]:
        (into / f.name).symlink_to(f.resolve())
    return into


def run_case(case_dir: Path, args: argparse.Namespace) -> tuple[Diagnosis | None, str, float]:
    """ptqtui on one case: the Diagnosis read back from its JSON report (or why not)."""
    with tempfile.TemporaryDirectory(prefix="bench_plan_") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [
            str(ROOT / ".venv" / "bin" / "ptqtui"),
            "-c",
            str(case_dir / "config.yaml"),
            "--report",
            "json",
            "-o",
            str(out),
            "--fail-on",
            "never",
            "--quiet",
            "--no-cache",
            "--sensitivity-samples",
            str(args.sensitivity_samples),
            "--time-budget",
            str(args.time_budget),
        ]
        subset = calibration_subset(case_dir, args.samples, Path(tmp) / "calibration")
        if subset is not None:
            cmd += ["--cal-dir", str(subset)]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        seconds = time.perf_counter() - start
        if not out.exists():
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            return None, why[:120], seconds
        return Diagnosis.from_json(json.loads(out.read_text())), "", seconds


def cell(violations: list[Violation]) -> str:
    if not violations:
        return "ok"
    return "; ".join(f"{v.where}: {v.detail}" for v in violations)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=corpus.DEFAULT_CACHE)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--cases", nargs="+", default=list(CASES))
    ap.add_argument("--samples", type=int, default=16, help="calibration files per case")
    ap.add_argument("--sensitivity-samples", type=int, default=2)
    ap.add_argument("--time-budget", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    props = tuple(Property)
    print("| case | " + " | ".join(p.value for p in props) + " | steps | seconds |")
    print("|---|" + "---|" * (len(props) + 2))
    failures = 0
    for model in args.models:
        for case in args.cases:
            case_dir = args.cache / "cases" / model / case
            if not (case_dir / "config.yaml").exists():
                continue
            d, why, seconds = run_case(case_dir, args)
            name = f"{model}/{case}"
            if d is None:
                print(f"| {name} | not run: {why} |" + " |" * len(props) + f" {seconds:.0f} |")
                failures += 1
                continue
            cells = []
            for p in props:
                v = check(d, (p,))
                failures += bool(v)
                cells.append(cell(v))
            steps = len(d.plan.steps) if d.plan is not None else 0
            print(f"| {name} | " + " | ".join(cells) + f" | {steps} | {seconds:.0f} |", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
