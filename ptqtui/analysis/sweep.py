"""Method sweep: the reference's calibration order, each setting measured at the model outputs.

Order (reference §3/4 and the triage flow): default, mix, kl, max, max with max_percentile
0.99999, 0.99995, 0.9999, 0.9995, 0.999; then per_channel on the best so far, asymmetric on the
best, bias_correction on the best. Every row keeps the config's placement and dtypes
(node_info, run_on_cpu, int16) and changes only the calibration; it carries that change as
its `Remedy` (a settings delta from the configured state: what a what-if of the row measures
and a patch writes). With labels each row also gets top-1.
Under a time budget rows are dropped from the end of the order (the tuning steps the
reference tries last) and the evaluation images are subsampled, and the notes say so.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time

from ptqtui.analysis.context import Measurement, SimContext
from ptqtui.analysis.measure import Outcome, affordable, cost_note
from ptqtui.analysis.results import SweepRow
from ptqtui.policy import PERCENTILES
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import Remedy, settings_delta

SEARCH_PASSES = {"default": 16, "mix": 40}  # rough cost of a search, in passes


def base_rows(base: QuantSettings) -> list[tuple[str, QuantSettings]]:
    """The first nine rows: calibration methods, no flags."""
    plain = dataclasses.replace(
        base,
        max_percentile=None,
        per_channel=False,
        asymmetric=False,
        bias_correction=False,
    )
    rows = [
        ("default", dataclasses.replace(plain, calibration_type="default")),
        ("mix", dataclasses.replace(plain, calibration_type="mix")),
        ("kl", dataclasses.replace(plain, calibration_type="kl")),
        ("max", dataclasses.replace(plain, calibration_type="max")),
    ]
    for p in PERCENTILES:
        rows.append(
            (
                f"max, max_percentile {p:g}",
                dataclasses.replace(plain, calibration_type="max", max_percentile=p),
            )
        )
    return rows


def yaml_settings(s: QuantSettings) -> tuple[tuple[str, str], ...]:
    """The calibration_parameters keys (and optimization items) a row stands for."""
    out = [("calibration_type", s.calibration_type)]
    if s.max_percentile is not None and s.max_percentile < 1.0:
        out.append(("max_percentile", f"{s.max_percentile:g}"))
    if s.per_channel:
        out.append(("per_channel", "True"))
    opts = [f for f in ("asymmetric", "bias_correction") if getattr(s, f)]
    if opts:
        out.append(("optimization", ",".join(opts)))
    return tuple(out)


def _same_calibration(a: QuantSettings, b: QuantSettings) -> bool:
    pa = a.max_percentile if a.max_percentile is not None and a.max_percentile < 1 else None
    pb = b.max_percentile if b.max_percentile is not None and b.max_percentile < 1 else None
    if a.calibration_type != b.calibration_type:
        return False
    if a.calibration_type == "max" and pa != pb:
        return False
    return (a.per_channel, a.asymmetric, a.bias_correction) == (
        b.per_channel,
        b.asymmetric,
        b.bias_correction,
    )


def _score(m: Measurement) -> float:
    """Higher is better: top-1 with labels, else the output cosine."""
    v = m.top1 if m.top1 is not None else m.similarity.cosine
    return -math.inf if v is None or math.isnan(v) else v


def method_sweep(
    ctx: SimContext,
    *,
    budget_seconds: float | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Outcome[SweepRow]:
    start = time.perf_counter()
    stage = "method sweep"
    notes: list[str] = []
    configured = ctx.settings
    plan = base_rows(configured)
    n_eval = len(ctx.eval) if ctx.eval is not None else 0
    per_row = len(ctx.samples) + n_eval
    total_rows = len(plan) + 3
    wanted = total_rows * per_row + sum(SEARCH_PASSES.values())
    report(progress, stage, 0, total_rows, cost_note("method sweep", wanted, ctx.pass_seconds))
    eval_limit = None
    if budget_seconds is not None and n_eval:
        fit = affordable(budget_seconds, ctx.pass_seconds, wanted)
        if fit < wanted:
            spare = max(0, fit - sum(SEARCH_PASSES.values())) // total_rows - len(ctx.samples)
            eval_limit = max(min(n_eval, 50), min(n_eval, spare))
            if eval_limit < n_eval:
                notes.append(
                    f"method sweep: top-1 on {eval_limit} of {n_eval} evaluation images "
                    "(time budget)"
                )
    results: list[tuple[str, QuantSettings, Measurement, str | None]] = []
    passes = 0

    def run(label: str, s: QuantSettings) -> bool:
        nonlocal passes
        elapsed = time.perf_counter() - start
        if budget_seconds is not None and results and elapsed > budget_seconds:
            return False
        check_cancel(cancel)
        before = ctx.sim.forward_passes
        cal = ctx.calibration_for(s, cancel=cancel)
        m = ctx.measure(s, calibration=cal, eval_limit=eval_limit, cancel=cancel)
        passes += ctx.sim.forward_passes - before
        select = next((ln for ln in cal.log if ln.startswith("Select ")), None)
        note = select if s.calibration_type in ("default", "mix") else None
        results.append((label, s, m, note))
        report(progress, stage, len(results), total_rows, label)
        return True

    stopped = None
    for label, s in plan:
        if not run(label, s):
            stopped = label
            break
    if stopped is None:
        # default searches per_channel and asymmetric itself: the flags go on the best other row
        searched = [r for r in results if r[1].calibration_type != "default"]
        best_label, best, _, _ = max(searched, key=lambda r: _score(r[2]))
        for flag in ("per_channel", "asymmetric", "bias_correction"):
            if getattr(best, flag):
                continue
            trial = dataclasses.replace(best, **{flag: True})
            label = f"{best_label} + {flag}"
            if not run(label, trial):
                stopped = label
                break
            if _score(results[-1][2]) > _score(next(r[2] for r in results if r[0] == best_label)):
                best_label, best = label, trial
    if stopped is not None:
        notes.append(f"method sweep stopped before '{stopped}' (time budget)")
    if not any(_same_calibration(s, configured) for _, s, _, _ in results) and stopped is None:
        run(f"configured: {configured.describe()}", configured)
    rows = []
    for label, s, m, note in results:
        rows.append(
            SweepRow(
                label=label,
                settings=yaml_settings(s),
                cosine=m.similarity.cosine,
                top1=m.top1,
                agreement=m.agreement,
                noise=m.noise,
                chosen=_same_calibration(s, configured),
                note=note,
                remedy=Remedy(settings=settings_delta(configured, s)),
            )
        )
    complete = stopped is None and (eval_limit is None or eval_limit >= n_eval)
    return Outcome(tuple(rows), tuple(notes), passes, time.perf_counter() - start, complete)
