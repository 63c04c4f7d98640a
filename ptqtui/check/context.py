"""`Context`: the facts rules read, each computed once, on first use, from the loaded inputs.

Context is the cache and the accessors; each fact is computed in its module of
`ptqtui.check.facts` (statistics, the model-response probe, evaluation, forensics). A fact
that cannot be computed (no config, no calibration data, not a classifier ...) raises
`MissingFact(reason)`; the engine then reports the rules that need it as skipped, with the
reason. The float model runs through the simulator's float path when the simulator ran, else
in one plain session (`facts.float_model`).

Facts (names for a rule's `needs`): config, graph, mapper_log, specs, layouts, preprocessors,
calibration, sample_stats, data_stats, float_model, probe, predictions, eval_samples,
eval_stats, eval_probe, order_test, raw_dir, resize_matches, analysis, sim.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ptqtui.budget import OutOfTime
from ptqtui.check.facts import evaluation, forensics, probe, stats
from ptqtui.check.facts.evaluation import EvalProbe, Predictions
from ptqtui.check.facts.float_model import FloatModel
from ptqtui.check.facts.forensics import OrderTest, ResizeMatch
from ptqtui.check.facts.missing import MissingFact, OutOfTimeFact
from ptqtui.check.facts.probe import (
    AS_GIVEN,
    COLOR_TYPES,
    DIV_255,
    IMAGENET_MEAN_RGB,
    IMAGENET_SCALE_RGB,
    NORM_ADDED,
    NORM_REMOVED,
    OTHER_LAYOUT,
    PROBE_SAMPLES,
    STRONG_MARGIN,
    SWAPPED,
    TIMES_255,
    ProbeStrength,
    ProbeVerdict,
    VariantScore,
)
from ptqtui.check.facts.stats import ArrayStats, DataStats, SampleSet
from ptqtui.errors import PtqInputError
from ptqtui.progress import ProgressCallback

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext
    from ptqtui.analysis.results import Analysis
    from ptqtui.budget import Deadline
    from ptqtui.inputs.config import InputSpec, MapperConfig
    from ptqtui.inputs.data import InputLayout, SampleSource
    from ptqtui.inputs.mapper_log import MapperLog
    from ptqtui.inputs.model import InputNormalisation, ModelGraph
    from ptqtui.inputs.preprocess import Preprocessor
    from ptqtui.inputs.resolve import LoadedInputs
    from ptqtui.request import Request

# The fact records and names rules import from here (their homes are in check/facts/)
__all__ = [
    "AS_GIVEN",
    "COLOR_TYPES",
    "DIV_255",
    "IMAGENET_MEAN_RGB",
    "IMAGENET_SCALE_RGB",
    "NORM_ADDED",
    "NORM_REMOVED",
    "OTHER_LAYOUT",
    "STRONG_MARGIN",
    "SWAPPED",
    "TIMES_255",
    "ArrayStats",
    "Context",
    "DataStats",
    "EvalProbe",
    "MissingFact",
    "OrderTest",
    "Predictions",
    "ProbeStrength",
    "ProbeVerdict",
    "ResizeMatch",
    "SampleSet",
    "VariantScore",
]

T = TypeVar("T")


class Context:
    """Lazy facts over the loaded inputs (or, for `lint`, a config and maybe a model)."""

    def __init__(
        self,
        inputs: LoadedInputs | None = None,
        *,
        config: MapperConfig | None = None,
        graph: ModelGraph | None = None,
        missing: dict[str, str] | None = None,
        seed: int = 0,
        probe_samples: int = PROBE_SAMPLES,
        analysis: Analysis | None = None,
        sim: SimContext | None = None,
        mapper_log: MapperLog | None = None,
    ) -> None:
        self.inputs = inputs
        self._mapper_log = inputs.mapper_log if inputs is not None else mapper_log
        self._analysis = analysis
        self._sim = sim
        self._config = inputs.config if inputs is not None else config
        self._graph = inputs.graph if inputs is not None else graph
        self._missing = dict(inputs.missing if inputs is not None else {})
        self._missing.update(missing or {})
        self.seed = inputs.request.seed if inputs is not None else seed
        self.probe_samples = probe_samples
        self._cache: dict[str, Any] = {}
        # set by the engine: long facts report progress and stop between samples
        self.progress: ProgressCallback | None = None
        self.cancel: threading.Event | None = None
        self.deadline: Deadline | None = None  # --time-budget: facts that measure check it

    @classmethod
    def from_inputs(
        cls,
        inputs: LoadedInputs,
        *,
        analysis: Analysis | None = None,
        sim: SimContext | None = None,
        missing: dict[str, str] | None = None,
        probe_samples: int = PROBE_SAMPLES,
    ) -> Context:
        """The facts of `inputs`; `missing` adds why facts the run could not compute are absent
        (the analysis, when the simulator could not run)."""
        return cls(inputs, analysis=analysis, sim=sim, missing=missing, probe_samples=probe_samples)

    def adopt_facts(self, other: Context) -> None:
        """Take the facts `other` computed (a run's early rules, before the simulator ran),
        so they are not computed twice; facts it could not have stay to be computed."""
        for name, value in other._cache.items():
            if not isinstance(value, MissingFact) or isinstance(value, OutOfTimeFact):
                self._cache.setdefault(name, value)

    # -- access helpers

    def _fact(self, name: str, compute: Callable[[], T]) -> T:
        if name in self._cache:
            value = self._cache[name]
            if isinstance(value, MissingFact):
                raise value
            return value  # type: ignore[no-any-return]
        try:
            value = compute()
        except MissingFact as missing:
            self._cache[name] = missing
            raise
        except PtqInputError as exc:
            missing = MissingFact(exc.one_line())
            self._cache[name] = missing
            raise missing from exc
        except OutOfTime as exc:
            if self.deadline is not None:
                self.deadline.missed(exc.what)
            missing = OutOfTimeFact(str(exc))
            self._cache[name] = missing
            raise missing from exc
        self._cache[name] = value
        return value

    def require(self, fact: str) -> Any:
        """The fact named `fact` (a `needs` entry); MissingFact if it cannot be had."""
        if fact.startswith("_") or not isinstance(getattr(type(self), fact, None), property):
            raise MissingFact(f"unknown fact {fact!r}")
        return getattr(self, fact)

    def maybe(self, fact: str) -> Any:
        """The fact, or None when it is missing; a fact the time budget left out is not
        "absent" but unmeasured, so it propagates (the rule is skipped, never silent)."""
        try:
            return self.require(fact)
        except OutOfTimeFact:
            raise
        except MissingFact:
            return None

    def why_missing(self, key: str, default: str) -> str:
        """Why the loader could not provide `key`, or `default`."""
        return self._missing.get(key, default)

    # -- config and model

    @property
    def config(self) -> MapperConfig:
        if self._config is None:
            raise MissingFact(self.why_missing("config", "no config (-c CONFIG.yaml)"))
        return self._config

    @property
    def graph(self) -> ModelGraph:
        if self._graph is None:
            raise MissingFact(self.why_missing("graph", "no model (MODEL.onnx)"))
        return self._graph

    @property
    def request(self) -> Request:
        if self.inputs is None:
            raise MissingFact("no request (config-only lint)")
        return self.inputs.request

    @property
    def specs(self) -> tuple[InputSpec, ...]:
        """One InputSpec per model input (full run), else per config input (lint)."""
        if self.inputs is not None:
            return self.inputs.specs
        return self.config.inputs

    @property
    def layouts(self) -> tuple[InputLayout, ...]:
        if self.inputs is None:
            raise MissingFact("no data layouts (config-only lint)")
        return self.inputs.layouts

    @property
    def preprocessors(self) -> tuple[Preprocessor, ...]:
        if self.inputs is None or self.inputs.preprocessors is None:
            raise MissingFact(self.why_missing("preprocessing", "no preprocessing"))
        return self.inputs.preprocessors

    def spec_of(self, input_name: str) -> InputSpec:
        for spec in self.specs:
            if spec.name == input_name:
                return spec
        raise MissingFact(f"no input spec for {input_name}")

    def model_normalisation(self, input_name: str) -> InputNormalisation | None:
        graph = self.maybe("graph")
        if graph is None:
            return None
        for norm in graph.normalisation:
            if norm.input == input_name:
                return norm  # type: ignore[no-any-return]
        return None

    def config_value_text(self, key: str) -> str | None:
        """The value of a one-line key as written in the YAML file ('klx' for 'key: klx')."""
        line = self.config.line_of(key)
        if line is None:
            return None
        lines = self._fact("config_lines", self._read_config_lines)
        if line > len(lines):
            return None
        _, sep, value = lines[line - 1].partition(":")
        value = value.split(" #", 1)[0].strip().strip("'\"")
        return value if sep and value else None

    def _read_config_lines(self) -> list[str]:
        try:
            return self.config.path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            return []

    def where_config(self, key: str) -> str:
        if self._config is None:
            return key
        return self._config.where(key)

    @property
    def analysis(self) -> Analysis:
        """The quantization analysis (ptqtui.analysis), when the diagnosis ran it."""
        if self._analysis is None:
            raise MissingFact(self.why_missing("analysis", "no quantization analysis was run"))
        return self._analysis

    @property
    def mapper_log(self) -> MapperLog:
        """The converter's own log (--mapper-log, or found next to the config)."""
        if self._mapper_log is None:
            raise MissingFact(self.why_missing("mapper_log", "no converter log (--mapper-log)"))
        return self._mapper_log

    @property
    def sim(self) -> SimContext:
        """The simulator, calibrated, for the what-ifs numeric rules measure."""
        if self._sim is None:
            raise MissingFact(self.why_missing("sim", "the quantization simulator did not run"))
        return self._sim

    # -- calibration data

    @property
    def calibration(self) -> SampleSource:
        if self.inputs is None or self.inputs.calibration is None:
            raise MissingFact(self.why_missing("calibration", "no calibration data"))
        return self.inputs.calibration

    @property
    def calibration_dir(self) -> str:
        return "; ".join(str(d) for d in self.calibration.dirs)

    @property
    def sample_stats(self) -> SampleSet:
        return self._fact("sample_stats", lambda: stats.sample_set(self.calibration, self.cancel))

    @property
    def data_stats(self) -> tuple[DataStats, ...]:
        return self._fact("data_stats", self._compute_data_stats)

    def data_stats_of(self, input_name: str) -> DataStats:
        for d in self.data_stats:
            if d.input == input_name:
                return d
        raise MissingFact(f"no statistics for input {input_name}")

    def _compute_data_stats(self) -> tuple[DataStats, ...]:
        sset = self.sample_stats
        return tuple(stats.aggregate(name, sset.of(name)) for name in sset.inputs)

    # -- the float model and what it says

    @property
    def float_model(self) -> FloatModel:
        """The float model: the simulator's float path when it ran, else one plain session."""
        graph = self.graph
        sim = self._sim.sim if self._sim is not None else None
        return self._fact("float_model", lambda: FloatModel(graph, sim))

    @property
    def probe(self) -> tuple[ProbeVerdict, ...]:
        """The model-response probe, one verdict per image-like input."""
        return self._fact("probe", lambda: probe.compute_probe(self))

    @property
    def predictions(self) -> Predictions:
        """Float-model classes on calibration samples (classifiers)."""
        return self._fact("predictions", lambda: evaluation.compute_predictions(self))

    # -- evaluation data

    @property
    def eval_samples(self) -> tuple[ArrayStats, ...]:
        """Per-image statistics of evaluation images (seeded choice)."""
        return self._fact("eval_samples", lambda: evaluation.compute_eval_samples(self))

    @property
    def eval_stats(self) -> tuple[DataStats, ...]:
        """Statistics of the evaluation images, read as the correct pipeline would."""
        samples = self.eval_samples
        name = self.layouts[0].name
        return self._fact("eval_stats", lambda: (stats.aggregate(name, samples),))

    @property
    def eval_probe(self) -> EvalProbe:
        """Float-model accuracy on the evaluation images, channels as configured and swapped."""
        return self._fact("eval_probe", lambda: evaluation.compute_eval_probe(self))

    @property
    def order_test(self) -> OrderTest:
        """Is the calibration data in the channel order of the evaluation images?"""
        return self._fact("order_test", lambda: forensics.compute_order_test(self))

    # -- raw images behind .bin files

    @property
    def raw_dir(self) -> Path:
        if self.inputs is None or self.inputs.request.raw_dir is None:
            raise MissingFact("no --raw-dir with the raw images behind the calibration files")
        raw = Path(self.inputs.request.raw_dir)
        if not raw.is_dir():
            raise MissingFact(f"--raw-dir {raw} is not a directory")
        return raw

    @property
    def resize_matches(self) -> tuple[ResizeMatch, ...]:
        return self._fact("resize_matches", lambda: forensics.compute_resize_matches(self))
