"""Which picture shows a finding's evidence: read from the Diagnosis, shared by the TUI and
the report writers.

The samples its remedy changes (thumbnails), else the nodes it names: their weight ranges when
its remedy is per-channel weights, their activation histograms otherwise. Decided from typed
values (the remedy, the records), never from a message.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptqtui.analysis.results import NodeRow, SampleThumbnail
    from ptqtui.check.findings import Finding
    from ptqtui.diagnosis import Diagnosis

NODES_PER_FINDING = 2  # node pictures per finding in the reports (the TUI walks all of them)


class PictureKind(enum.Enum):
    SAMPLES = "samples"  # thumbnails of calibration samples, as given and as fixed
    HISTOGRAM = "histogram"  # a node's |x| histogram with every method's threshold
    WEIGHTS = "weights"  # a node's per-channel weight ranges against the per-tensor one
    SENSITIVITY = "sensitivity"  # the sensitivity ranking, the finding's nodes among it


@dataclass(frozen=True, slots=True)
class Picture:
    kind: PictureKind
    nodes: tuple[NodeRow, ...] = ()
    thumbnails: tuple[SampleThumbnail, ...] = ()


def thumbnails_of(
    finding: Finding, thumbnails: Sequence[SampleThumbnail]
) -> tuple[SampleThumbnail, ...]:
    """The thumbnails made for this finding (its rule, the inputs its remedy changes)."""
    inputs = {c.input for c in finding.remedy.inputs} if finding.remedy is not None else set()
    return tuple(
        t
        for t in thumbnails
        if t.code == finding.code and (not inputs or None in inputs or t.input in inputs)
    )


def node_names(finding: Finding, known: set[str]) -> tuple[str, ...]:
    """The nodes a finding names: `related`, then evidence located at a node."""
    names = [r for r in finding.related if r in known]
    for e in finding.evidence:
        if e.where and e.where.startswith("node ") and e.where[5:] in known:
            names.append(e.where[5:])
    return tuple(dict.fromkeys(names))


def picture_of(
    finding: Finding,
    thumbnails: Sequence[SampleThumbnail],
    rows: Sequence[NodeRow],
) -> Picture | None:
    thumbs = thumbnails_of(finding, thumbnails)
    if thumbs:
        return Picture(PictureKind.SAMPLES, thumbnails=thumbs)
    by_name = {n.name: n for n in rows}
    nodes = [by_name[name] for name in node_names(finding, set(by_name))]
    settings = finding.remedy.settings if finding.remedy is not None else None
    if settings is not None and settings.per_channel is True:
        weighted = tuple(n for n in nodes if n.weight_channel_max)
        if weighted:
            return Picture(PictureKind.WEIGHTS, nodes=weighted)
    calibration = settings is not None and (
        settings.calibration_type is not None or settings.max_percentile is not None
    )
    if settings is not None and settings.nodes and not calibration:
        # int16 or CPU for some nodes: what shows why is how sensitive they are
        ranked = tuple(n for n in nodes if n.sensitivity_cosine is not None)
        return Picture(PictureKind.SENSITIVITY, nodes=ranked) if ranked else None
    shown = tuple(n for n in nodes if n.histogram)
    return Picture(PictureKind.HISTOGRAM, nodes=shown) if shown else None


def pictures(d: Diagnosis) -> list[tuple[Finding, Picture]]:
    """Every finding that has a picture, most severe first."""
    rows = d.analysis.nodes if d.analysis else ()
    ordered = sorted(d.findings, key=lambda f: (-f.severity.rank, f.code))
    out = []
    for f in ordered:
        picture = picture_of(f, d.thumbnails, rows)
        if picture is not None:
            out.append((f, picture))
    return out
