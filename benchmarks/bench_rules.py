"""Recall of planted pipeline mistakes and false criticals on the development corpus, no labels.

Runs ``ptqtui -c CASE/config.yaml --report json`` (no --eval-dir) on every built corpus case
(``~/.cache/ptqtui-corpus/cases``, see the README's "The development corpus") and compares the
findings with the case's ``case.json``: each planted critical mistake must be found at its code
and severity, no other finding may be critical, and the plan's first step must carry the
expected data fix. Prints per-case rows, then recall and false criticals per model and per kind.

    .venv/bin/python -m benchmarks.bench_rules [--models efficientnet_lite1 ...] [--cases bgr ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "ptqtui-corpus"
RANKS = {"info": 0, "minor": 1, "major": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What one ptqtui run found on one corpus case, against what was planted."""

    model: str
    case: str
    kinds: tuple[str, ...]
    planted_critical: int
    found_critical: int
    false_critical: tuple[str, ...]
    first_fix_ok: bool | None  # None: the case names no first fix
    found: tuple[str, ...]  # "PTQ001:critical" ...
    first_step: str
    seconds: float
    error: str | None = None


def rules_only(case_dir: Path, probe_samples: int) -> dict:
    """The pipeline, data and config rules alone (no simulator, no plan): a report-like dict."""
    from ptqtui.check.context import Context
    from ptqtui.check.engine import run_rules
    from ptqtui.check.registry import load_rules
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.request import Request

    rules = tuple(r for r in load_rules(entry_points=False) if r.info.category != "numerics")
    inputs = load_inputs(Request(config=case_dir / "config.yaml", quiet=True))
    run = run_rules(Context.from_inputs(inputs, probe_samples=probe_samples), rules)
    findings = [
        {
            "code": f.code,
            "severity": f.severity.value,
            "remedy": {
                "inputs": [{"fix": c.fix.value} for c in f.remedy.inputs],
                "config": [{"key": e.key, "new": e.new} for e in f.remedy.config],
            }
            if f.remedy is not None
            else None,
        }
        for f in run.findings
    ]
    # the plan's first step is the first pipeline finding by severity, then code
    ordered = sorted(
        (f for f in findings if RANKS[f["severity"]] >= RANKS["minor"]),
        key=lambda f: (-RANKS[f["severity"]], f["code"]),
    )
    steps = [{"title": f["code"], "remedy": f["remedy"]} for f in ordered[:1]]
    return {"findings": findings, "plan": {"steps": steps}}


def run_case(case_dir: Path, args: argparse.Namespace) -> CaseResult:
    """ptqtui on one case; the JSON report read back and scored against case.json."""
    spec = json.loads((case_dir / "case.json").read_text())
    if args.rules_only:
        start = time.perf_counter()
        return score(spec, rules_only(case_dir, args.probe_samples), time.perf_counter() - start)
    cmd = [
        str(ROOT / ".venv" / "bin" / "ptqtui"),
        "-c",
        str(case_dir / "config.yaml"),
        "--report",
        "json",
        "--fail-on",
        "never",
        "--sensitivity-samples",
        str(args.sensitivity_samples),
        "--time-budget",
        str(args.time_budget),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    seconds = time.perf_counter() - start
    kinds = tuple(p["kind"] for p in spec["planted"]) or ("correct",)
    planted = [p for p in spec["planted"] if p["severity"] == "critical"]
    if proc.returncode not in (0, 1):
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        return CaseResult(
            spec["model"], spec["case"], kinds, len(planted), 0, (), None, (), "", seconds, tail
        )
    return score(spec, json.loads(proc.stdout), seconds)


def score(spec: dict, doc: dict, seconds: float) -> CaseResult:
    """One report scored against its case.json."""
    kinds = tuple(p["kind"] for p in spec["planted"]) or ("correct",)
    planted = [p for p in spec["planted"] if p["severity"] == "critical"]
    findings = doc.get("findings", [])
    sev = defaultdict(int)
    for f in findings:
        sev[f["code"]] = max(sev[f["code"]], RANKS[f["severity"]])
    found_critical = sum(sev.get(p["code"], -1) >= RANKS["critical"] for p in planted)
    # a planted code graded above its planted severity is over-graded, not a false critical
    planted_codes = {p["code"] for p in spec["planted"]}
    false_critical = tuple(
        sorted(
            {
                f["code"]
                for f in findings
                if f["severity"] == "critical" and f["code"] not in planted_codes
            }
        )
    )
    steps = (doc.get("plan") or {}).get("steps") or []
    first = steps[0] if steps else None
    remedy = (first or {}).get("remedy")
    if remedy is None and first is not None:  # a step without its own remedy: its finding's
        codes = first.get("codes") or []
        remedy = next((f.get("remedy") for f in findings if codes and f["code"] == codes[0]), None)
    first_fixes = [c["fix"] for c in (remedy or {}).get("inputs", [])]
    # the config's own normalisation turned on is the typed form of "add the normalisation"
    for edit in (remedy or {}).get("config", []):
        if edit.get("key") == "input_parameters.norm_type" and edit.get("new") != "no_preprocess":
            first_fixes.append("add-normalisation")
    expected_first = spec.get("first_fix")
    first_ok = None if expected_first is None else expected_first in first_fixes
    return CaseResult(
        model=spec["model"],
        case=spec["case"],
        kinds=kinds,
        planted_critical=len(planted),
        found_critical=found_critical,
        false_critical=false_critical,
        first_fix_ok=first_ok,
        found=tuple(f"{f['code']}:{f['severity']}" for f in findings if f["severity"] != "info"),
        first_step=(first or {}).get("title", "")[:60] + (f" {first_fixes}" if first_fixes else ""),
        seconds=seconds,
    )


def summarise(results: list[CaseResult]) -> str:
    """Recall of planted criticals, false criticals and first-fix hits per model and per kind."""
    lines = []
    for label, key in (("model", lambda r: (r.model,)), ("kind", lambda r: r.kinds)):
        groups: dict[str, list[CaseResult]] = defaultdict(list)
        for r in results:
            for k in key(r):
                groups[k].append(r)
        lines.append(
            f"| {label} | cases | planted critical found | false criticals | first fix right |"
        )
        lines.append("|---|---|---|---|---|")
        for k in sorted(groups):
            rs = groups[k]
            planted = sum(r.planted_critical for r in rs)
            found = sum(r.found_critical for r in rs)
            false = sum(len(r.false_critical) for r in rs)
            firsts = [r.first_fix_ok for r in rs if r.first_fix_ok is not None]
            first = f"{sum(firsts)}/{len(firsts)}" if firsts else "-"
            recall = f"{found}/{planted}" if planted else "-"
            lines.append(f"| {k} | {len(rs)} | {recall} | {false} | {first} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--time-budget", type=float, default=20.0)
    parser.add_argument("--sensitivity-samples", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument(
        "--rules-only",
        action="store_true",
        help="run the pipeline/data/config rules in this process (no simulator, no plan)",
    )
    parser.add_argument("--probe-samples", type=int, default=32)
    args = parser.parse_args(argv)
    case_dirs = sorted((args.cache / "cases").glob("*/*/case.json"))
    if not case_dirs:
        print(f"no corpus cases under {args.cache}: build them with benchmarks/corpus.py")
        return 2
    results = []
    for path in case_dirs:
        model, case = path.parent.parent.name, path.parent.name
        if (args.models and model not in args.models) or (args.cases and case not in args.cases):
            continue
        r = run_case(path.parent, args)
        results.append(r)
        verdict = (
            f"error: {r.error}"
            if r.error
            else f"critical {r.found_critical}/{r.planted_critical}, false {list(r.false_critical)}"
            f", first fix {r.first_fix_ok}"
        )
        print(f"{model:20} {case:14} {r.seconds:6.1f}s {verdict}; {' '.join(r.found)}", flush=True)
    print()
    print(summarise(results))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps([_row(r) for r in results], indent=1))
    return 0


def _row(r: CaseResult) -> dict:
    return {name: getattr(r, name) for name in CaseResult.__slots__}


if __name__ == "__main__":
    sys.exit(main())
