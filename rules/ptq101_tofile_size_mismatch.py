"""PTQ101: numpy.tofile files whose size does not fit input_shape x the declared dtype."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from ptqtui.rules._remedies import config_remedy, edit, input_remedy

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo
from ptqtui.remedy import InputFix, Remedy

if TYPE_CHECKING:
    from pathlib import Path

    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ101",
    name="tofile-size-mismatch",
    category="data",
    severity=Severity.CRITICAL,
    title="Calibration .bin files do not fit input_shape and cal_data_type",
    why="numpy.tofile keeps no shape or dtype: the converter reads the bytes with the configured "
    "dtype and shape, so files written otherwise are rejected or read as noise.",
    fix="Write the files with the dtype and shape the config declares, or declare the ones they "
    "were written with (cal_data_type, the _f32 suffix, input_shape).",
    needs=("calibration",),
    example="[critical] PTQ101 100 of 100 .bin files in calib/ do not fit 1x3x64x64 uint8 "
    "(12288 bytes): calib/0.bin has 49152 bytes, which fits float32 1x3x64x64\n"
    "  change: calibration_parameters.cal_data_type: uint8 -> float32",
)

MAJOR_SHARE = 0.2  # a fifth of the set unusable changes the calibration ranges noticeably
LISTED = 5  # files named in a message


def check(ctx: Context) -> list[Finding]:
    source = ctx.calibration
    findings = []
    mismatches = list(source.mismatches)
    if mismatches:
        total = len(mismatches) + len(source.files)
        share = len(mismatches) / total
        first = mismatches[0]
        shape = "x".join(map(str, first.shape))
        fits = Counter(fit for m in mismatches for fit in m.fits)
        common = [fit for fit, n in fits.most_common() if n == len(mismatches)]
        same_shape = [fit for fit in common if fit.endswith(" " + shape)]
        severity = (
            Severity.CRITICAL
            if share == 1.0
            else Severity.MAJOR
            if share >= MAJOR_SHARE
            else Severity.MINOR
        )
        ordered = same_shape + [fit for fit in common if fit not in same_shape]
        fit_text = f", which fits {', '.join(ordered[:3])}" if ordered else ""
        message = (
            f"{len(mismatches)} of {total} .bin files in {_dir(first.file)} do not fit {shape} "
            f"{first.dtype} ({first.expected} bytes): {first.file.name} has {first.size} "
            f"bytes{fit_text}"
        )
        if share == 1.0:
            message += "; no calibration file can be read"
        remedy: Remedy | None = None
        fix = None
        if same_shape and share < 1.0:
            # the other files fit the declared dtype: these few are the odd ones, not the key
            dtype = same_shape[0].split()[0]
            remedy = input_remedy(
                InputFix.DROP_SAMPLES, None, tuple(m.file.name for m in mismatches)
            )
            fix = (
                f"These files hold {dtype} data while the others are {first.dtype}: write "
                f"them as {first.dtype} (arr.astype(np.{first.dtype}).tofile(...)) or leave "
                "them out."
            )
        elif same_shape:
            dtype = same_shape[0].split()[0]
            key = "calibration_parameters.cal_data_type"
            # the dtype read was declared (cal_data_type) or implied by the directory name
            declared = first.dtype if any(sp.cal_data_type for sp in ctx.specs) else None
            remedy = config_remedy(edit(ctx.maybe("config"), key, declared, dtype))
            fix = (
                f"The files hold {dtype} data: set cal_data_type {dtype} (or write them as "
                f"{first.dtype} with arr.astype(np.{first.dtype}).tofile(...))."
            )
        elif common:
            fix = (
                f"The files fit {common[0]}: write one sample of {shape} {first.dtype} per "
                "file, or fix input_shape."
            )
        evidence = [
            Evidence(
                "file size",
                f"{m.size} bytes",
                f"{m.expected} bytes ({shape} {m.dtype})",
                _rel(m.file),
            )
            for m in mismatches[:LISTED]
        ]
        findings.append(RULE.finding(message, *evidence, severity=severity, fix=fix, remedy=remedy))
    for spec in ctx.specs:
        if spec.cal_dtype_conflict:
            key = "calibration_parameters.cal_data_type"
            where = ctx.where_config(key)
            folder = spec.cal_data_dir.name if spec.cal_data_dir else "cal_data_dir"
            implied = "float32" if folder.endswith("_f32") else "uint8"
            suffix = "ends in _f32" if implied == "float32" else "has no _f32 suffix"
            findings.append(
                RULE.finding(
                    f"calibration directory {folder} {suffix} (meaning {implied}) but "
                    f"cal_data_type says {spec.cal_data_type}; the converter reads "
                    f"{spec.cal_data_type} and logs the conflict ({where})",
                    Evidence(
                        "cal_data_type vs directory suffix",
                        str(spec.cal_data_type),
                        f"{implied} (the directory name)",
                        where,
                    ),
                    # cal_data_type prevails, so the conflict alone is cosmetic
                    severity=Severity.MAJOR if mismatches else Severity.INFO,
                    fix="Make the directory name and cal_data_type agree (cal_data_type wins).",
                )
            )
    return findings


def _dir(path: Path) -> str:
    return f"{path.parent.name}/"


def _rel(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"
