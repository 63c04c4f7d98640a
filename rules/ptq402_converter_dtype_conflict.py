"""PTQ402: the calibration dir's name suffix and cal_data_type disagree (the converter said so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptqtui.check.findings import Evidence, Finding, Severity
from ptqtui.check.registry import RuleInfo

if TYPE_CHECKING:
    from ptqtui.check.context import Context

RULE = RuleInfo(
    code="PTQ402",
    name="converter-dtype-suffix-conflict",
    category="converter",
    severity=Severity.INFO,  # the converter goes on with cal_data_type: only wrong if the
    # files were written otherwise (PTQ101/PTQ103 see that with the data)
    title="The calibration dir's name suffix and cal_data_type disagree",
    why="The converter reads the .bin files as cal_data_type says; if the files were written "
    "as the suffix says (_f32: float32, else uint8) every sample is read as garbage, and if "
    "not, the name misleads whoever reads the config next.",
    fix="Make them agree: name float32 dirs *_f32 and set calibration_parameters.cal_data_type "
    "to the dtype the files were written with.",
    needs=("mapper_log",),
    example="[info] PTQ402 the converter read the calibration files as float32 (cal_data_type), "
    "not as the dir name's suffix says (hb_mapper_makertbin.log line 5)",
)


def check(ctx: Context) -> list[Finding]:
    log = ctx.mapper_log
    if log.dtype_conflict is None:
        return []
    where = log.where(log.dtype_conflict_line)
    return [
        RULE.finding(
            f"the converter read the calibration files as {log.dtype_conflict} (cal_data_type), "
            f"not as the dir name's suffix says ({where})",
            Evidence(
                "converter warning",
                f"dir name suffix differs from cal_data_type {log.dtype_conflict}",
                "suffix and cal_data_type agree",
                where,
            ),
        )
    ]
