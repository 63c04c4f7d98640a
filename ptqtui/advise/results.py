"""The plan as the Diagnosis holds it: ordered steps, each with its measured effect."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ptqtui.analysis.results import Measure
from ptqtui.check.findings import Severity
from ptqtui.remedy import Remedy

__all__ = ["Measure", "Plan", "PlanStage", "PlanStep"]


class PlanStage(enum.StrEnum):
    """The plan's stages, in the reference's triage order (the JSON value is the string)."""

    PIPELINE = "pipeline"  # pipeline, config and data findings
    CALIBRATION = "calibration"  # calibration method and flags
    CALIBRATION_SET = "calibration-set"  # what the calibration set holds
    PRECISION = "precision"  # int16 nodes, the tail on the CPU, high-precision outputs
    NODES = "nodes"  # what the node analysis says
    QAT = "qat"  # when nothing reaches the target


@dataclass(frozen=True, slots=True)
class PlanStep:
    number: int
    stage: PlanStage
    title: str  # "Feed RGB data: swap the channels of the calibration files"
    action: str  # what to change, imperative
    why: str
    severity: Severity
    evidence: tuple[str, ...] = ()
    before: Measure | None = None  # measured by the simulator where it could try the step
    after: Measure | None = None
    yaml_change: str | None = None  # the remedy's YAML: "calibration_parameters.per_channel: true"
    codes: tuple[str, ...] = ()  # the findings this step answers
    tried: bool = False  # the simulator applied the change and measured it
    remedy: Remedy | None = None  # the change, typed


@dataclass(frozen=True, slots=True)
class Plan:
    route: str  # why the plan starts where it does: the loss band and its basis
    target_cosine: float
    steps: tuple[PlanStep, ...]
    reached: Measure | None  # the best state after every tried step
    config_diff: str = ""  # unified diff of the user's YAML and the patched one
    patched_config: str | None = None  # the patched YAML text (comments kept)
