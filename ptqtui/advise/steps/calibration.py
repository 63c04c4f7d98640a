"""Stage 2: calibration, in the reference's order: mix, kl, max; max_percentile 0.99999 ...
0.999 (the trend shown); per_channel on the best; asymmetric; bias_correction. A change is
recommended only when its gain is above the noise of the measurement.

The candidates are what-ifs of the service; those the method sweep measured already (same
settings, same data) come from its memory, not from new forward passes. Without a simulator
the sweep's rows decide.
"""

from __future__ import annotations

import dataclasses
import math

from ptqtui.advise.results import Measure, PlanStage
from ptqtui.advise.steps.common import (
    Basis,
    Draft,
    Env,
    State,
    brief,
    cos,
    fmt,
    grade,
    sets_flag,
    touches_calibration,
    try_settings,
    yaml_of,
)
from ptqtui.analysis.whatif import settings_after
from ptqtui.check.findings import Severity
from ptqtui.policy import MIN_GAIN, PERCENTILES
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import Remedy, settings_delta

METHODS = ("mix", "kl", "max")  # the reference's order
EXPLICIT = ("kl", "max")  # methods that do not choose per_channel themselves
FLAGS = ("per_channel", "asymmetric", "bias_correction")
WHY = {
    "per_channel": "One weight scale per output channel: channels whose weights span "
    "very different ranges no longer share one scale.",
    "asymmetric": "A zero point per activation tensor: one-sided ranges (after ReLU "
    "or with an offset) use all int8 levels.",
    "bias_correction": "Corrects the mean output shift quantization puts on each node.",
}


def calibration_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    if env.meter is None:
        return _from_sweep(state, env)
    start, start_m = state.settings, state.measure
    if start_m is None:
        return [], state
    tried: dict[str, tuple[QuantSettings, Remedy, Measure]] = {}

    def trial(label: str, s: QuantSettings) -> None:
        if s == start:
            tried[label] = (s, state.remedy, start_m)
            return
        remedy, m = try_settings(state, env, s, against=state)
        if m is not None:
            tried[label] = (s, remedy, m)

    plain = dataclasses.replace(start, max_percentile=None)
    for ctype in METHODS:
        trial(ctype, dataclasses.replace(plain, calibration_type=ctype))
    for p in PERCENTILES:
        trial(f"max p={p:g}", dataclasses.replace(start, calibration_type="max", max_percentile=p))
    if all(m is start_m for _, _, m in tried.values()):
        return [], state  # nothing measured (budget spent): no calibration verdict
    aim = env.aim
    figures = "cosine" if aim.score(start_m) is None else f"cosine / {aim.metric}"
    trend = ", ".join(
        f"{p:g} {brief(env, tried[f'max p={p:g}'][2])}"
        for p in PERCENTILES
        if f"max p={p:g}" in tried
    )
    methods = ", ".join(f"{k} {brief(env, m)}" for k, (_, _, m) in tried.items() if "p=" not in k)
    ranked = sorted(tried.values(), key=lambda srm: aim.rank(srm[2]), reverse=True)
    best_s, best_r, best_m = ranked[0]
    if aim.basis is not Basis.COSINE:  # the best that gains, not the best within the noise
        best_s, best_r, best_m = next(
            (
                srm
                for srm in ranked
                if srm[0] != start and env.judge(state.remedy, start_m, srm[1], srm[2]).ok
            ),
            ranked[0],
        )
    gain = env.judge(state.remedy, start_m, best_r, best_m)
    noise = gain.cosine_noise
    evidence: tuple[str, ...] = (
        f"configured ({start.describe()}): {fmt(start_m)}",
        f"methods ({figures}): {methods}",
        f"max_percentile trend ({figures}): {trend}",
        f"{gain.describe()} (the method comparison)",
    )
    steps: list[Draft] = []
    current = state
    method_ok = gain.ok and best_s != start
    if best_s != start and cos(best_m) - cos(start_m) > noise and not method_ok:
        lost = (
            "loses accuracy on the labelled images"
            if aim.basis is Basis.COSINE
            else f"does not raise {aim.metric} beyond its noise"
        )
        evidence = (
            *evidence,
            f"{best_s.describe()} gains cosine beyond the noise but {lost} "
            f"({fmt(start_m)} -> {fmt(best_m)}): not recommended",
        )
    if (
        method_ok
        and not start.per_channel
        and start.calibration_type in EXPLICIT
        and best_s.calibration_type in EXPLICIT
    ):
        # keep the method change only if it still counts once per_channel is on (the next
        # step): otherwise per_channel alone is the smaller change that does it
        pc_start = dataclasses.replace(start, per_channel=True)
        pc_best = dataclasses.replace(best_s, per_channel=True)
        r_start, m_start = try_settings(state, env, pc_start)
        r_best, m_best = try_settings(state, env, pc_best)
        if (
            m_start is not None
            and m_best is not None
            and not env.judge(r_start, m_start, r_best, m_best).ok
        ):
            method_ok = False
            evidence = (
                *evidence,
                f"with per_channel the method no longer matters: {start.describe()} "
                f"+ per_channel {cos(m_start):.4f}, {best_s.describe()} + per_channel "
                f"{cos(m_best):.4f}",
            )
    if method_ok:
        remedy = Remedy(settings=settings_delta(start, best_s))
        steps.append(
            Draft(
                stage=PlanStage.CALIBRATION,
                title=f"Calibrate with {best_s.describe()}",
                action=f"Set calibration_type {best_s.calibration_type}"
                + (f", max_percentile {best_s.max_percentile:g}" if best_s.max_percentile else "")
                + ".",
                why="Of the reference's calibration methods this one keeps the model output "
                "closest to the float model, by more than the measurement noise.",
                severity=grade(start_m, best_m, env.cap),
                evidence=evidence,
                before=start_m,
                after=best_m,
                remedy=remedy,
                changes=yaml_of(env, remedy, start),
                codes=env.answered(touches_calibration),
                tried=True,
            )
        )
        current = state.moved(best_r, best_s, best_m)
    # flags on the best: per_channel, asymmetric, bias_correction
    flag_base = current
    if current.settings.calibration_type in ("default", "mix"):
        # default/mix decide per-channel themselves: flags go on the best explicit method
        explicit = [(s, r, m) for s, r, m in tried.values() if s.calibration_type in EXPLICIT]
        if explicit:
            s, r, m = max(explicit, key=lambda srm: aim.rank(srm[2]))
            flag_base = current.moved(r, s, m)
    for flag in FLAGS:
        if getattr(flag_base.settings, flag):
            continue
        s = dataclasses.replace(flag_base.settings, **{flag: True})
        r, m = try_settings(flag_base, env, s, against=current)
        if m is None:
            continue
        gain_f = env.judge(current.remedy, current.measure, r, m)
        line = f"{s.describe()}: {fmt(m)} (without {flag}: {fmt(flag_base.measure)})"
        if gain_f.ok:
            remedy = Remedy(settings=settings_delta(current.settings, s))
            steps.append(
                Draft(
                    stage=PlanStage.CALIBRATION,
                    title=f"Turn on {flag}"
                    + (
                        f" (with {s.calibration_type})"
                        if s.calibration_type != current.settings.calibration_type
                        else ""
                    ),
                    action="Set "
                    + "; ".join(c.describe() for c in yaml_of(env, remedy, current.settings))
                    + ".",
                    why=WHY[flag],
                    severity=grade(current.measure, m, env.cap),
                    evidence=(line, gain_f.describe()) + (evidence if not steps else ()),
                    before=current.measure,
                    after=m,
                    remedy=remedy,
                    changes=yaml_of(env, remedy, current.settings),
                    codes=env.answered(sets_flag(flag)),
                    tried=True,
                )
            )
            current = current.moved(r, s, m)
            flag_base = current
    if not steps:
        steps.append(
            Draft(
                stage=PlanStage.CALIBRATION,
                title=f"Keep the calibration ({start.describe()})",
                action="No calibration change: none beats the configured one by more than "
                "the measurement noise without losing accuracy.",
                why="The reference's calibration order was tried in the simulator.",
                severity=Severity.INFO,
                evidence=evidence,
                before=start_m,
                after=start_m,
                tried=True,
            )
        )
    return steps, current


def _from_sweep(state: State, env: Env) -> tuple[list[Draft], State]:
    """No simulator: recommend from the method sweep's rows (measured by the analyses)."""
    if env.analysis is None or not env.analysis.sweep:
        return [], state
    rows = env.analysis.sweep
    chosen = next((r for r in rows if r.chosen), None)
    if chosen is None:
        return [], state
    best = max(rows, key=lambda r: env.aim.rank(r.measure))
    # two rows measured apart: the noise of their difference is their spreads added
    noise = max(MIN_GAIN, math.hypot(chosen.noise or 0.0, best.noise or 0.0))
    before, after = chosen.measure, best.measure  # with the task agreement's interval
    trend = ", ".join(f"{r.label} {r.cosine:.4f}" for r in rows)
    ok = env.judge(Remedy(), before, Remedy(), after, cosine_noise=noise).ok
    if best is chosen or not ok:
        return [
            Draft(
                PlanStage.CALIBRATION,
                f"Keep the calibration ({chosen.label})",
                "No calibration change: none beats the configured one by more than the noise "
                "without losing accuracy.",
                "The method sweep measured the reference's calibration order.",
                Severity.INFO,
                (f"sweep (cosine): {trend}",),
                before,
                before,
                tried=True,
            )
        ], state
    have = settings_after(env.base, chosen.remedy or Remedy())
    want = settings_after(env.base, best.remedy or Remedy())
    remedy = Remedy(settings=settings_delta(have, want))
    changes = yaml_of(env, remedy, have)
    return [
        Draft(
            PlanStage.CALIBRATION,
            f"Calibrate with {best.label}",
            "Set " + "; ".join(c.describe() for c in changes) + ".",
            "The method sweep measured it closest to the float model, above the noise.",
            grade(before, after, env.cap),
            (f"sweep (cosine): {trend}", f"noise: {noise:.5f} cosine"),
            before,
            after,
            remedy=remedy,
            changes=changes,
            codes=env.answered(lambda r: touches_calibration(r) or sets_flag("per_channel")(r)),
            tried=True,
        )
    ], state.moved(state.remedy, state.settings, after)
