"""Fake context and analysis records for the PTQ3xx rule tests (no onnxruntime)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ptqtui.analysis.context import Measurement
from ptqtui.analysis.results import Analysis, CurvePoint, NodeRow, Similarity, SweepRow
from ptqtui.check.context import MissingFact
from ptqtui.quant.scheme import QuantSettings


def node(i: int, name: str, **kw: Any) -> NodeRow:
    base = {
        "name": name,
        "op_type": name.rsplit("/", 1)[-1],
        "output": f"{name}_out",
        "dtype": "int8",
        "placement": "BPU",
        "similarity": Similarity(0.999, 0.0, 0.0, 30.0, 0.1),
        "sensitivity_cosine": 0.99995,
        "topo_index": i,
    }
    base.update(kw)
    return NodeRow(**base)


def row(label: str, cosine: float, *settings: tuple[str, str], **kw: Any) -> SweepRow:
    return SweepRow(label, tuple(settings), cosine, noise=kw.pop("noise", 0.0004), **kw)


def analysis(**kw: Any) -> Analysis:
    return Analysis(scheme="int8", **kw)


def curve(values: list[float]) -> tuple[CurvePoint, ...]:
    return tuple(CurvePoint(i, f"n{i}", v) for i, v in enumerate(values))


@dataclass
class FakeSim:
    """SimContext's what-if surface: settings and measure(settings)."""

    settings: QuantSettings
    score: Any  # QuantSettings -> cosine
    calls: list[QuantSettings] = field(default_factory=list)
    options: list[dict[str, Any]] = field(default_factory=list)  # each call's keywords

    def measure(self, settings: QuantSettings, **kw: Any) -> Measurement:
        self.calls.append(settings)
        self.options.append(kw)
        c = self.score(settings)
        return Measurement(Similarity(c, 0.0, 0.0, 30.0, 0.1), None, None, 0.0003)


class FakeContext:
    """Just the facts the PTQ3xx rules read."""

    def __init__(self, analysis: Analysis | None = None, config: Any = None, sim: Any = None):
        self._facts = {"analysis": analysis, "config": config, "sim": sim}

    def _get(self, name: str) -> Any:
        value = self._facts.get(name)
        if value is None:
            raise MissingFact(f"no {name}")
        return value

    @property
    def analysis(self) -> Analysis:
        return self._get("analysis")

    @property
    def config(self) -> Any:
        return self._get("config")

    @property
    def sim(self) -> Any:
        return self._get("sim")

    def maybe(self, name: str) -> Any:
        return self._facts.get(name)


def replace(obj: Any, **kw: Any) -> Any:
    return dataclasses.replace(obj, **kw)
