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

from ptqtui.analysis.context import Measurement, SimContext, measure_record
from ptqtui.analysis.measure import Outcome, affordable, cost_note
from ptqtui.analysis.results import SweepRow
from ptqtui.policy import MIN_GAIN, PERCENTILES
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import Remedy, settings_delta

SEARCH_PASSES = {"default": 16, "mix": 40}  # rough cost of a search, in passes
# Where samples run one at a time (a 640 detector), the rows measured whole (every agreement
# sample, every label) besides the configured one: the best by output cosine of those within
# its noise. Each is a pass per agreement sample: 100 passes, 40 s and more, where the plan
# measures again whatever it tries. Elsewhere every row within the noise is measured whole.
WHOLE_ROWS = 3


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


def _better(a: Measurement, b: Measurement) -> bool:
    """Whether `a` beats `b`: by top-1 when both were measured with the labels, else by the
    output cosine (a row ranked by its cosine alone has no top-1 to compare)."""
    if a.top1 is not None and b.top1 is not None:
        return _score(a) > _score(b)
    ca, cb = a.similarity.cosine, b.similarity.cosine
    return not math.isnan(ca) and (math.isnan(cb) or ca > cb)


def _is_whole(m: Measurement) -> bool:
    """Whether a row was measured with its task agreement or labels (not similarity only)."""
    return m.interval is not None or m.top1 is not None


def _finalists(
    results: list[tuple[str, QuantSettings, Measurement, str | None]],
    configured: QuantSettings,
    cap: int | None = None,
) -> set[int]:
    """The configured row and the rows whose output cosine is within the noise of the best
    one: three standard errors of their per-sample differences (the same samples under both,
    so their common spread cancels), at least MIN_GAIN; the `cap` best of those."""
    cos = [r[2].similarity.cosine for r in results]
    finite = [i for i, c in enumerate(cos) if not math.isnan(c)]
    keep = {i for i, r in enumerate(results) if _same_calibration(r[1], configured)}
    if not finite:
        return keep | set(range(len(results)))
    best = max(finite, key=lambda i: cos[i])
    near = [
        i
        for i in finite
        if cos[best] - cos[i] <= max(MIN_GAIN, 3 * _paired_se(results[best][2], results[i][2]))
    ]
    near.sort(key=lambda i: -cos[i])
    return keep | set(near[:cap])


def _paired_se(a: Measurement, b: Measurement) -> float:
    """Standard error of the per-sample cosine difference (infinite when unknown)."""
    if len(a.cosines) != len(b.cosines) or len(a.cosines) < 2:
        return math.inf
    d = [x - y for x, y in zip(a.cosines, b.cosines, strict=True)]
    d = [x for x in d if not math.isnan(x)]
    if len(d) < 2:
        return math.inf
    mean = sum(d) / len(d)
    var = sum((x - mean) ** 2 for x in d) / (len(d) - 1)
    return math.sqrt(var / len(d))


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
    # with a task metric or labels, every row is first ranked by its output similarity on the
    # analysis samples; only the rows that can win are measured whole (all agreement samples,
    # every label): the others lose beyond the noise already
    whole = ctx.has_task_metric or ctx.eval is not None or ctx.task_eval is not None
    row_seconds = 0.0  # the rows run so far took, calibrations included
    unmeasured: list[str] = []  # finalists the budget left at their output cosine

    def fits(seconds: float) -> bool:
        """Whether work of about `seconds` ends within the budget (not only starts in it)."""
        return budget_seconds is None or time.perf_counter() - start + seconds <= budget_seconds

    def run(label: str, s: QuantSettings, quick: bool = False) -> bool:
        nonlocal passes, row_seconds
        if results and not fits(row_seconds / len(results)):
            return False
        check_cancel(cancel)
        t = time.perf_counter()
        before = ctx.sim.forward_passes
        cal = ctx.calibration_for(s, cancel=cancel)
        m = ctx.measure(
            s, calibration=cal, eval_limit=eval_limit, cancel=cancel, similarity_only=quick
        )
        passes += ctx.sim.forward_passes - before
        select = next((ln for ln in cal.log if ln.startswith("Select ")), None)
        note = select if s.calibration_type in ("default", "mix") else None
        results.append((label, s, m, note))
        row_seconds += time.perf_counter() - t
        report(progress, stage, len(results), total_rows, label)
        return True

    def measure_whole(finals: set[int]) -> None:
        """The finalists with their task figures: the configured row on every sample, the
        others sequentially against it (a row worse than the configured one beyond the noise
        stops there, and its note says on how many samples it was measured)."""
        nonlocal passes
        n_agree = ctx.agreement_count()
        reference: tuple[float, ...] = ()
        first = sorted(finals, key=lambda i: (not _same_calibration(results[i][1], configured), i))
        for i in first:
            label, s, m, note = results[i]
            ours = _same_calibration(s, configured)
            if _is_whole(m):
                reference = m.scores if ours else reference
                continue  # measured whole already
            agreeing = len(ctx.kept) if ctx.has_task_metric else 0
            if not fits((agreeing + (eval_limit or n_eval)) * ctx.pass_seconds):
                unmeasured.append(label)  # by output cosine only: said, and not complete
                continue
            check_cancel(cancel)
            before = ctx.sim.forward_passes
            if ours or len(reference) != n_agree:
                m = ctx.measure(s, eval_limit=eval_limit, cancel=cancel)
                reference = m.scores if ours else reference
            else:
                m = ctx.measure_against(s, reference, eval_limit=eval_limit, cancel=cancel)
                if len(m.scores) < n_agree:
                    stop = (
                        f"{m.metric or 'agreement'} on the first {len(m.scores)} of {n_agree} "
                        "samples: worse than the configured beyond the noise"
                    )
                    note = f"{note}; {stop}" if note else stop
            passes += ctx.sim.forward_passes - before
            results[i] = (label, s, m, note)

    stopped = None
    for label, s in plan:
        if not run(label, s, quick=whole):
            stopped = label
            break
    cap = WHOLE_ROWS if ctx.sim.batchable is False else None
    finals = _finalists(results, configured, cap) if results else set()
    measure_whole(finals)
    if stopped is None:
        # default searches per_channel and asymmetric itself: the flags go on the best other
        # row (of those measured whole: the others lose beyond the noise)
        searched = [
            r for i, r in enumerate(results) if r[1].calibration_type != "default" and i in finals
        ] or [r for r in results if r[1].calibration_type != "default"]
        best_label, best, _, _ = max(searched, key=lambda r: _score(r[2]))
        for flag in ("per_channel", "asymmetric", "bias_correction"):
            if getattr(best, flag):
                continue
            trial = dataclasses.replace(best, **{flag: True})
            label = f"{best_label} + {flag}"
            if not run(label, trial, quick=whole and cap is not None):
                stopped = label
                break
            if _better(results[-1][2], next(r[2] for r in results if r[0] == best_label)):
                best_label, best = label, trial
    if stopped is not None:
        notes.append(f"method sweep stopped before '{stopped}' (time budget)")
    if not any(_same_calibration(s, configured) for _, s, _, _ in results) and stopped is None:
        run(f"configured: {configured.describe()}", configured)
    if whole and results:
        finals = _finalists(results, configured, cap) | {
            i for i, r in enumerate(results) if _is_whole(r[2])
        }
        measure_whole(finals)
        if len(finals) < len(results):
            which = (
                "the flags tried and those within the noise of the best output cosine"
                if cap is None
                else f"at most the {cap} best output cosines within its noise (samples run one "
                "at a time)"
            )
            notes.append(
                f"method sweep: {len(finals)} of {len(results)} rows measured whole (the "
                f"configured one, {which}, on {len(ctx.samples)} samples); the others by "
                "output cosine only"
            )
    rows = []
    for label, s, m, note in results:
        rec = measure_record(m)  # the task agreement with its interval, as every what-if's
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
                agreement_low=rec.agreement_low,
                agreement_high=rec.agreement_high,
                samples=rec.samples,
                metric=rec.metric,
                char_error_rate=rec.char_error_rate,
            )
        )
    if unmeasured:
        notes.append(
            f"method sweep: {', '.join(dict.fromkeys(unmeasured))} not measured whole (time "
            "budget): output cosine only"
        )
    complete = stopped is None and not unmeasured and (eval_limit is None or eval_limit >= n_eval)
    return Outcome(tuple(rows), tuple(notes), passes, time.perf_counter() - start, complete)
