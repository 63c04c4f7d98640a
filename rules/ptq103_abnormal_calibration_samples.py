"""PTQ103: constant, black, white, over/under-exposed, near-duplicate, outlying samples."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np
from ptqtui.rules._remedies import input_remedy

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import InputFix

if TYPE_CHECKING:
    from ptqtui.check.context import ArrayStats, Context

RULE = RuleInfo(
    code="PTQ103",
    name="abnormal-calibration-samples",
    category="data",
    severity=Severity.MINOR,
    title="Abnormal calibration samples: constant, black/white, badly exposed, duplicates",
    why="Calibration ranges come from the samples: pure black/white or over-exposed images "
    "stretch or shrink them, duplicates weigh some situations twice; the reference asks to "
    "leave such images out.",
    fix="Remove the listed files and replace them with ordinary images of the training "
    "distribution.",
    needs=("sample_stats", "data_stats"),
    example="[minor] PTQ103 4 of 100 calibration samples are abnormal: 2 black (calib/17.bin, "
    "calib/18.bin), 1 over-exposed (calib/40.bin), 1 near-duplicate (calib/41.bin = 40.bin)",
)

DARK_MEAN = 0.04  # mean below 4 % of full scale (about 10/255): a black frame
BRIGHT_MEAN = 0.96  # mean above 96 % of full scale: a white frame
SATURATED_SHARE = 0.35  # over a third of the values at >= 98 % of full scale: over-exposed
DARK_SHARE = 0.5  # half of the values at <= 2 % of full scale: under-exposed
DUPLICATE_DIFF = 0.004  # mean |thumbnail difference| below 0.4 % of full scale (~1/255)
OUTLIER_FENCE = 3.0  # Tukey's "far out": beyond 3 interquartile ranges of a sample's mean/std
# A tenth of the set abnormal (or 5 % black, white or badly exposed frames, which move the
# observed ranges most) is past "avoid such images": major. Fewer: minor.
MAJOR_SHARE = 0.1
MAJOR_EXPOSURE_SHARE = 0.05
EXPOSURE_KINDS = ("black", "white", "over-exposed", "under-exposed", "constant")
LISTED = 4  # files named per kind


def check(ctx: Context) -> list[Finding]:
    sset = ctx.sample_stats
    findings = []
    for name, thumbs in zip(sset.inputs, sset.thumbs, strict=True):
        stats = sset.of(name)
        data = ctx.data_stats_of(name)
        spec = ctx.spec_of(name)
        image = spec.type_train not in ("featuremap", None)
        scale = data.full_scale if image else None
        kinds: dict[str, list[str]] = {}
        flagged: set[int] = set()
        dropped: list[str] = []  # the files to leave out, in the order found
        for i, s in enumerate(stats):
            kind = _exposure(s, scale)
            if kind:
                kinds.setdefault(kind, []).append(s.name)
                flagged.add(i)
                dropped.append(s.name)
        ref = scale if scale is not None else max(data.std, 1e-12) * 4
        for i, j in _duplicates(thumbs, ref * DUPLICATE_DIFF):
            if i not in flagged and j not in flagged:
                kinds.setdefault("near-duplicate", []).append(f"{stats[j].name} = {stats[i].name}")
                flagged.add(j)
                dropped.append(stats[j].name)
        for i in _outliers(stats):
            if i not in flagged:
                kinds.setdefault("outlying", []).append(stats[i].name)
                flagged.add(i)
                dropped.append(stats[i].name)
        if sset.unreadable and name == sset.inputs[0]:
            for file, _problem in sset.unreadable:
                kinds.setdefault("unreadable", []).append(file)
                dropped.append(file)
        if not kinds:
            continue
        count = sum(len(v) for v in kinds.values())
        total = len(stats) + len(sset.unreadable)
        parts = [f"{len(files)} {kind} ({_listing(files)})" for kind, files in kinds.items()]
        label = f" of input {name}" if len(sset.inputs) > 1 else ""
        exposure = sum(len(v) for k, v in kinds.items() if k in EXPOSURE_KINDS)
        major = count / total >= MAJOR_SHARE or exposure / total >= MAJOR_EXPOSURE_SHARE
        severity = Severity.MAJOR if major else Severity.MINOR
        findings.append(
            RULE.finding(
                f"{count} of {total} calibration samples{label} are abnormal: {'; '.join(parts)}",
                *(
                    Evidence(f"{kind} samples", str(len(files)), "0", _listing(files))
                    for kind, files in kinds.items()
                ),
                severity=severity,
                remedy=input_remedy(InputFix.DROP_SAMPLES, name, tuple(dropped)),
            )
        )
    return findings


def _listing(files: list[str]) -> str:
    return ", ".join(files[:LISTED]) + (", ..." if len(files) > LISTED else "")


def _exposure(s: ArrayStats, scale: float | None) -> str | None:
    constant = s.std <= 1e-6 * max(1.0, abs(s.mean))
    if scale is None:
        return "constant" if constant else None
    k = 0 if scale == 1.0 else 1
    if s.mean <= DARK_MEAN * scale:
        return "black"
    if s.mean >= BRIGHT_MEAN * scale:
        return "white"
    if constant:
        return "constant"
    if s.high_share[k] >= SATURATED_SHARE:
        return "over-exposed"
    if s.low_share[k] >= DARK_SHARE:
        return "under-exposed"
    return None


def _duplicates(thumbs: np.ndarray, limit: float) -> list[tuple[int, int]]:
    """(i, j) with i < j whose thumbnails differ by less than `limit` on average."""
    out = []
    n = len(thumbs)
    matched: set[int] = set()
    for i in range(n - 1):
        if i in matched:
            continue
        diff = np.abs(thumbs[i + 1 :] - thumbs[i]).mean(axis=1)
        for k in np.nonzero(diff < limit)[0]:
            j = i + 1 + int(k)
            if j not in matched:
                matched.add(j)
                out.append((i, j))
    return out


def _outliers(stats: tuple[ArrayStats, ...]) -> list[int]:
    """Samples whose mean or std lies beyond Tukey's far-out fences (robust to classes that
    make the distribution multimodal, unlike a z-score)."""
    if len(stats) < 10:
        return []
    out = set()
    for values in ([s.mean for s in stats], [s.std for s in stats]):
        q1, _, q3 = statistics.quantiles(values, n=4)
        iqr = q3 - q1
        if iqr <= 1e-12:
            continue
        low, high = q1 - OUTLIER_FENCE * iqr, q3 + OUTLIER_FENCE * iqr
        out.update(i for i, v in enumerate(values) if v < low or v > high)
    return sorted(out)
