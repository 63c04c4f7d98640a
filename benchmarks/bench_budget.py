"""Does --time-budget hold? ptqtui with budgets on the demo and on corpus `correct` cases.

Runs ``ptqtui -c CONFIG --report json --time-budget B --no-cache`` (a fresh process each, so
nothing is served from a cache) and prints per run: wall clock, CPU time of the process
(user + system; onnxruntime runs 2 threads, so it can exceed the wall clock), the load average
around it, the ratio of each to the budget (to the floor when the budget is below it: then
only loading, calibration and the headline run), the floor ptqtui estimated, where the time
went (the progress stages, timestamped as they arrive) and what was "not measured".

    nice -n 19 .venv/bin/python -m benchmarks.bench_budget [--budgets 5 30 60 120]
        [--cases demo efficientnet_lite1 ddddocr_det] [--sensitivity-samples 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "ptqtui-corpus"
DEMO = ROOT / "demo_data" / "scenarios" / "bgr_swap" / "config.yaml"
HOLDS = 1.2  # the "the budget holds within 20 %"


@dataclass(frozen=True, slots=True)
class BudgetRun:
    """One ptqtui run under one budget."""

    case: str
    budget: float
    wall: float
    cpu: float
    load: tuple[float, float]  # 1-minute load average before and after
    floor: float | None  # ptqtui's estimate of loading + calibration + headline
    below_floor: bool
    not_measured: tuple[str, ...]
    stages: tuple[tuple[str, float], ...]  # progress stage, seconds spent in it (wall)
    error: str | None = None

    @property
    def bound(self) -> float:
        """What the run should end within: the budget, or the floor when above it."""
        return max(self.budget, self.floor or 0.0) if self.below_floor else self.budget


def config_of(case: str, cache: Path) -> Path:
    if case == "demo":
        return DEMO
    model, _, name = case.partition("/")
    return cache / "cases" / model / (name or "correct") / "config.yaml"


def run_one(case: str, budget: float, args: argparse.Namespace) -> BudgetRun:
    """ptqtui on one case under one budget, timed from outside."""
    config = config_of(case, args.cache)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [
            str(ROOT / ".venv" / "bin" / "ptqtui"),
            "-c",
            str(config),
            "--report",
            "json",
            "-o",
            str(out),
            "--fail-on",
            "never",
            "--no-cache",
            "--sensitivity-samples",
            str(args.sensitivity_samples),
            "--time-budget",
            f"{budget:g}",
        ]
        load0 = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        stages: list[tuple[str, float]] = []
        current, since = "start", start
        pipe = subprocess.PIPE
        with subprocess.Popen(cmd, stderr=pipe, stdout=subprocess.DEVNULL, text=True) as p:
            assert p.stderr is not None
            for line in p.stderr:
                stage = _stage(line)
                if stage is not None and stage != current:
                    now = time.perf_counter()
                    stages.append((current, now - since))
                    current, since = stage, now
            code = p.wait()
        wall = time.perf_counter() - start
        stages.append((current, time.perf_counter() - since))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        load = (load0, os.getloadavg()[0])
        if code not in (0, 1) or not out.exists():
            return BudgetRun(case, budget, wall, cpu, load, None, False, (), (), f"exit {code}")
        doc = json.loads(out.read_text())
    record = doc.get("budget") or {}
    analysis = doc.get("analysis") or {}
    missed = [*(analysis.get("trimmed") or ()), *(record.get("not_measured") or ())]
    floor = record.get("floor_seconds")
    below = floor is not None and budget < floor
    merged: dict[str, float] = {}
    for name, seconds in stages:
        merged[name] = merged.get(name, 0.0) + seconds
    return BudgetRun(
        case,
        budget,
        wall,
        cpu,
        load,
        floor,
        below,
        tuple(dict.fromkeys(missed)),
        tuple(merged.items()),
    )


def _stage(line: str) -> str | None:
    """The stage of a progress line ('ptqtui: calibration, 100 steps ...' -> 'calibration')."""
    text = line.strip()
    if not text.startswith("ptqtui: "):
        return None
    head = text[len("ptqtui: ") :]
    if head.startswith("--time-budget"):
        return None
    return head.split(",")[0].split(" (")[0].split(" ...")[0].strip()


def row(r: BudgetRun) -> str:
    if r.error:
        return f"| {r.case} | {r.budget:g} | error: {r.error} | | | | | | |"
    ratio = r.wall / r.bound
    ok = "yes" if ratio <= HOLDS else "**no**"
    floor = f"{r.floor:.0f}" if r.floor is not None else "-"
    what = "below the floor" if r.below_floor else ", ".join(r.not_measured[:4]) or "-"
    if len(r.not_measured) > 4 and not r.below_floor:
        what += f" (+{len(r.not_measured) - 4})"
    top = sorted(r.stages, key=lambda s: -s[1])[:3]
    spent = ", ".join(f"{name} {sec:.0f}" for name, sec in top)
    return (
        f"| {r.case} | {r.budget:g} | {floor} | {r.wall:.1f} | {r.cpu:.1f} | "
        f"{r.load[0]:.1f}-{r.load[1]:.1f} | {ratio:.2f} ({r.cpu / r.bound:.2f}) | {ok} | "
        f"{what} | {spent} |"
    )


HEADER = (
    "| case | budget s | floor s | wall s | CPU s | load | wall (CPU) / bound | holds | "
    "not measured | most time (s) |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--budgets", type=float, nargs="+", default=[5.0, 30.0, 60.0, 120.0])
    parser.add_argument("--cases", nargs="+", default=["demo", "efficientnet_lite1", "ddddocr_det"])
    parser.add_argument("--sensitivity-samples", type=int, default=2)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    print(HEADER, flush=True)
    for case in args.cases:
        if not config_of(case, args.cache).exists():
            print(f"| {case} | | not built: benchmarks/corpus.py --build |", flush=True)
            continue
        for budget in args.budgets:
            r = run_one(case, budget, args)
            results.append(r)
            print(row(r), flush=True)
    if args.json_out is not None:
        rows = [{name: getattr(r, name) for name in BudgetRun.__slots__} for r in results]
        args.json_out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
