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
    first_gain: bool | None = None  # the first step's measured effect is a gain (None: none)
    first_effect: str = ""  # "cosine 0.91 -> 0.99" as measured by the plan
    no_effect: int = 0  # planted criticals whose undoing leaves the float outputs identical
    equivalent: tuple[str, ...] = ()  # codes accepted because their fix gives the same input
    not_measured: tuple[str, ...] = ()  # what the --time-budget left out (the report's record)


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
        doc = rules_only(case_dir, args.probe_samples)
        return score(spec, doc, time.perf_counter() - start, case_dir)
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
    kinds = tuple(p["kind"] for p in spec["planted"]) or ("correct",)
    planted = [p for p in spec["planted"] if p["severity"] == "critical"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        seconds = time.perf_counter() - start
        return CaseResult(
            spec["model"], spec["case"], kinds, len(planted), 0, (), None, (), "", seconds,
            f"timed out after {args.timeout:.0f} s",
        )  # fmt: skip
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        return CaseResult(
            spec["model"], spec["case"], kinds, len(planted), 0, (), None, (), "", seconds, tail
        )
    if args.reports is not None:  # the whole report, for reading the plan afterwards
        args.reports.mkdir(parents=True, exist_ok=True)
        (args.reports / f"{spec['model']}-{spec['case']}.json").write_text(proc.stdout)
    return score(spec, json.loads(proc.stdout), seconds, case_dir)


def _fixes(remedy: dict | None) -> list[str]:
    """The data fixes of a report's remedy (InputFix values), the config's normalisation
    turned on counted as "add the normalisation"."""
    fixes = [c["fix"] for c in (remedy or {}).get("inputs", [])]
    for edit in (remedy or {}).get("config", []):
        if edit.get("key") == "input_parameters.norm_type" and edit.get("new") != "no_preprocess":
            fixes.append("add-normalisation")
    return fixes


def score(spec: dict, doc: dict, seconds: float, case_dir: Path | None = None) -> CaseResult:
    """One report scored against its case.json.

    Two kinds of plant are scored by what they give the model, measured on arrays
    (benchmarks/equivalence.py), not by their names: a plant whose undoing leaves the float
    model's outputs identical (a channel swap of grey crops) has no effect to find and is not
    counted; a critical finding at another code whose fix gives the model the input the
    training pipeline gives (what undoing the plant gives, by the corpus' construction: the
    `correct` case holds the same samples) finds the plant, and such a first step is right
    (ddddocr rec's double_norm is byte for byte its range01: x255 and "remove the
    normalisation" give the same input; its missing_norm is fixed by /255 as by the config's
    1/255).
    """
    from benchmarks import equivalence

    kinds = tuple(p["kind"] for p in spec["planted"]) or ("correct",)
    planted = [p for p in spec["planted"] if p["severity"] == "critical"]
    no_effect = 0
    if case_dir is not None:
        effective = [
            p for p in planted if not p.get("fix") or equivalence.has_effect(case_dir, p["fix"])
        ]
        no_effect = len(planted) - len(effective)
        planted = effective
    findings = doc.get("findings", [])
    sev = defaultdict(int)
    for f in findings:
        sev[f["code"]] = max(sev[f["code"]], RANKS[f["severity"]])
    found = [sev.get(p["code"], -1) >= RANKS["critical"] for p in planted]
    equivalent: set[str] = set()
    if case_dir is not None:
        for i, p in enumerate(planted):
            if found[i] or not p.get("fix"):
                continue
            for f in findings:
                fixes = frozenset(_fixes(f.get("remedy")))
                critical = f["severity"] == "critical" and fixes
                if critical and equivalence.gives_training_input(case_dir, fixes):
                    found[i] = True
                    equivalent.add(f["code"])
                    break
    found_critical = sum(found)
    # a planted code graded above its planted severity is over-graded, not a false critical
    planted_codes = {p["code"] for p in spec["planted"]} | equivalent
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
    first_fixes = _fixes(remedy)
    expected_first = spec.get("first_fix")
    if expected_first is not None and not planted:
        expected_first = None  # the plant has no effect: no fix to expect
    first_ok = None if expected_first is None else expected_first in first_fixes
    if first_ok is False and case_dir is not None and first_fixes:
        # another fix that gives the model the training's input, as the planted one does
        first_ok = equivalence.gives_training_input(case_dir, frozenset(first_fixes))
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
        no_effect=no_effect,
        equivalent=tuple(sorted(equivalent)),
        first_gain=_gain(first),
        first_effect=_effect(first),
        not_measured=_not_measured(doc),
    )


def _not_measured(doc: dict) -> tuple[str, ...]:
    """What the time budget left out: the analyses it trimmed and the record's list (or the
    floor, when the budget was below it)."""
    record = doc.get("budget") or {}
    floor = record.get("floor_seconds")
    if floor is not None and record.get("seconds", 0) < floor:
        return (f"below the floor of {floor:.0f} s",)
    trimmed = (doc.get("analysis") or {}).get("trimmed") or []
    return tuple(dict.fromkeys([*trimmed, *(record.get("not_measured") or [])]))


def _measures(step: dict | None) -> tuple[dict, dict] | None:
    before, after = (step or {}).get("before"), (step or {}).get("after")
    return (before, after) if before and after else None


def _gain(step: dict | None) -> bool | None:
    """Whether the plan's first step measured a gain: cosine, or top-1 / agreement, up."""
    pair = _measures(step)
    if pair is None:
        return None
    before, after = pair
    for key in ("top1", "agreement", "cosine"):
        if before.get(key) is not None and after.get(key) is not None:
            return after[key] >= before[key]
    return None


def _effect(step: dict | None) -> str:
    pair = _measures(step)
    if pair is None:
        return ""
    before, after = pair
    return ", ".join(
        f"{key} {before[key]:.4f} -> {after[key]:.4f}"
        for key in ("cosine", "agreement", "top1")
        if before.get(key) is not None and after.get(key) is not None
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
            f"| {label} | cases | planted critical found | false criticals | first fix right "
            "| plants without effect |"
        )
        lines.append("|---|---|---|---|---|---|")
        for k in sorted(groups):
            rs = groups[k]
            planted = sum(r.planted_critical for r in rs)
            found = sum(r.found_critical for r in rs)
            false = sum(len(r.false_critical) for r in rs)
            firsts = [r.first_fix_ok for r in rs if r.first_fix_ok is not None]
            first = f"{sum(firsts)}/{len(firsts)}" if firsts else "-"
            recall = f"{found}/{planted}" if planted else "-"
            none = sum(r.no_effect for r in rs)
            lines.append(f"| {k} | {len(rs)} | {recall} | {false} | {first} | {none or '-'} |")
        lines.append("")
    planted = sum(r.planted_critical for r in results)
    found = sum(r.found_critical for r in results)
    false = sum(len(r.false_critical) for r in results)
    firsts = [r.first_fix_ok for r in results if r.first_fix_ok is not None]
    none = sum(r.no_effect for r in results)
    lines.append(
        f"total: {len(results)} cases, planted critical found {found}/{planted}, false "
        f"criticals {false}, first fix {sum(firsts)}/{len(firsts)}, plants without effect {none}"
    )
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
    parser.add_argument("--reports", type=Path, default=None, help="keep each JSON report here")
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
            + (f", no effect {r.no_effect}" if r.no_effect else "")
            + (f", equivalent {list(r.equivalent)}" if r.equivalent else "")
            + (f"; step 1 {r.first_step!r}: {r.first_effect}" if r.first_effect else "")
            + (f"; not measured: {', '.join(r.not_measured)}" if r.not_measured else "")
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
