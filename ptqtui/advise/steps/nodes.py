"""Stage 5: what the node analysis says: a few sensitive nodes, or error accumulated along
the graph (the two causes of PTQ loss, reference §3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ptqtui.advise.results import PlanStage
from ptqtui.advise.steps.common import Draft, Env, State, moves_nodes
from ptqtui.analysis.results import AnalysisStage
from ptqtui.check.findings import Severity
from ptqtui.policy import SENSITIVE_COSINE

if TYPE_CHECKING:
    from ptqtui.analysis.results import Analysis

FEW_NODES = 3  # "a few sensitive nodes": this many explain most of the loss
EXPLAINED_SHARE = 0.6  # ... at least this share of it
MIN_NODE_LOSS = 0.005  # output cosine lost: below this the node analysis has nothing to say


def node_steps(state: State, env: Env) -> tuple[list[Draft], State]:
    if env.meter is not None and env.done(state.measure):
        return [], state  # the steps above reach the target: the configured scheme's nodes are moot
    if env.analysis is not None and not env.analysis.complete(
        AnalysisStage.SENSITIVITY, AnalysisStage.CURVE
    ):
        return [], state  # a verdict on the nodes needs every node measured
    verdict = node_verdict(env.analysis)
    if verdict is None:
        return [], state
    kind, text, evidence = verdict
    step = Draft(
        stage=PlanStage.NODES,
        title=text,
        action=(
            "Treat the sensitive nodes first (int16, CPU for the tail), as the precision steps do."
            if kind == "sensitive"
            else "Single-node changes help little: prefer whole-model settings "
            "(per_channel, calibration) and, if still short, QAT."
        ),
        why="The two causes of PTQ loss (reference §3): a few sensitive nodes, or small "
        "errors accumulating along the graph.",
        severity=Severity.INFO,
        evidence=evidence,
        codes=env.answered(lambda r: r.is_empty() or moves_nodes(r)),
    )
    return [step], state


def node_verdict(analysis: Analysis | None) -> tuple[str, str, tuple[str, ...]] | None:
    """('sensitive' | 'accumulation', headline, evidence) from the node analyses."""
    if analysis is None:
        return None
    rows = [
        n
        for n in analysis.nodes
        if n.sensitivity_cosine is not None and not math.isnan(n.sensitivity_cosine)
    ]
    if not rows:
        return None
    total = 1.0 - analysis.quality.output_cosine if analysis.quality is not None else None
    if analysis.curve:
        total = 1.0 - analysis.curve[-1].cosine
    if total is None or total < MIN_NODE_LOSS:
        return None  # too little lost to say where it comes from
    ranked = sorted(rows, key=lambda n: n.sensitivity_cosine or 1.0)
    sensitive = [n for n in ranked if (n.sensitivity_cosine or 1.0) < SENSITIVE_COSINE]
    top = ranked[:FEW_NODES]
    explained = sum(1.0 - (n.sensitivity_cosine or 1.0) for n in top)
    share = explained / total
    evidence = (
        f"output cosine loss with every node int8: {total:.4f}",
        "most sensitive alone: " + ", ".join(f"{n.name} {n.sensitivity_cosine:.4f}" for n in top),
        f"nodes below the converter's {SENSITIVE_COSINE} alone: {len(sensitive)} of {len(rows)}",
        f"the top {len(top)} alone lose {100 * share:.0f} % of the whole loss"
        + (" (their losses overlap)" if share > 1 else ""),
    )
    if sensitive and len(sensitive) <= FEW_NODES and share >= EXPLAINED_SHARE:
        names = ", ".join(n.name for n in sensitive)
        return "sensitive", f"A few sensitive nodes: {names}", evidence
    return "accumulation", "Error accumulates along the graph (no single culprit)", evidence
