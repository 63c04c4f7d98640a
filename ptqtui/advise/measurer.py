"""What the planner needs from the simulator, and the adapter over the analyses' SimContext.

The planner only sees `Measurer`: measure a `QuantSettings` (re-calibrated as it asks) and,
for pipeline findings, a measurer on data with the pipeline mistake undone. Tests use a fake.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ptqtui.advise.results import Measure
from ptqtui.errors import PtqInputError
from ptqtui.quant.scheme import QuantSettings

if TYPE_CHECKING:
    from ptqtui.analysis.context import SimContext
    from ptqtui.inputs.resolve import LoadedInputs

log = logging.getLogger(__name__)

# Pipeline fixes the simulator can emulate on the calibration data (names the planner and
# the measurer share). Each undoes one mistake on the arrays as the user's files hold them.
SWAP_CHANNELS = "swap channels"  # PTQ001: BGR data for an RGB model (or the reverse)
UNDO_NORMALISATION = "undo normalisation"  # PTQ002: data normalised before the config does
SCALE_UP = "scale x255"  # PTQ003: 0..1 data where 0..255 is expected
SCALE_DOWN = "scale /255"  # PTQ003: the reverse
READ_NHWC = "read as NHWC"  # PTQ102: HWC bytes read as CHW
FIXES = (SWAP_CHANNELS, UNDO_NORMALISATION, SCALE_UP, SCALE_DOWN, READ_NHWC)


class Measurer(Protocol):
    """Measures what-ifs for the planner (all at the model outputs, vs the float model).

    Optional: `paired_noise(a, b) -> float | None`, the noise of the cosine difference of two
    settings measured on the same samples; without it the planner compares each gain with
    the larger of the two measures' own noise (more conservative).
    """

    def measure(self, settings: QuantSettings) -> Measure:
        """The model quantized as `settings` ask (re-calibrated), measured."""
        ...

    def with_input_fix(self, fix: str) -> Measurer | None:
        """A measurer on calibration data with `fix` (one of FIXES) applied, or None when the
        fix cannot be emulated on these inputs."""
        ...

    def measure_as_deployed(self, fix: str, settings: QuantSettings) -> Measure | None:
        """The user's pipeline as it is: calibrated on the data as given and evaluated on
        labelled data with the same mistake (the one `fix` undoes); None without labels."""
        ...


class SimMeasurer:
    """`Measurer` over the analyses' `SimContext` (what `run_analysis` returns)."""

    def __init__(
        self,
        ctx: SimContext,
        inputs: LoadedInputs | None = None,
        *,
        cancel: threading.Event | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.inputs = inputs
        self.cancel = cancel
        self.eval_limit = eval_limit
        self._cache: dict[QuantSettings, Measure] = {}
        self._per_sample: dict[QuantSettings, np.ndarray] = {}

    def measure(self, settings: QuantSettings) -> Measure:
        hit = self._cache.get(settings)
        if hit is None:
            m = self.ctx.measure(settings, eval_limit=self.eval_limit, cancel=self.cancel)
            hit = Measure(m.similarity.cosine, m.top1, m.agreement, m.noise)
            self._cache[settings] = hit
        return hit

    def paired_noise(self, a: QuantSettings, b: QuantSettings) -> float | None:
        """Standard error of the per-sample output cosine difference b - a over the analysis
        samples (the same samples under both settings, so their common spread cancels)."""
        xa, xb = self._cosines(a), self._cosines(b)
        diff = xb - xa
        diff = diff[np.isfinite(diff)]
        if diff.size < 2:
            return None
        return float(np.std(diff, ddof=1) / math.sqrt(diff.size))

    def _cosines(self, settings: QuantSettings) -> np.ndarray:
        hit = self._per_sample.get(settings)
        if hit is None:
            from ptqtui.quant import metrics

            ctx = self.ctx
            scheme = ctx.scheme_for(settings)
            cal = ctx.calibration_for(settings, cancel=self.cancel)
            values = []
            for sample, ref in zip(ctx.samples, ctx.refs, strict=True):
                out = ctx.sim.run(sample, scheme, calibration=cal)
                values.append(
                    metrics.nanmean(metrics.compare(ref[n], out[n]).cosine for n in ctx.sim.outputs)
                )
            hit = np.asarray(values, np.float64)
            self._per_sample[settings] = hit
        return hit

    def with_input_fix(self, fix: str) -> SimMeasurer | None:
        """Re-observe and re-calibrate on the fixed calibration data (one more pass over it);
        the evaluation set is left as it is."""
        if self.inputs is None or self.inputs.calibration is None:
            return None
        fixers = _fixers(self.inputs, fix)
        if fixers is None:
            return None
        from ptqtui.analysis.context import AnalysisUnavailable, build_context

        fixed_inputs = dataclasses.replace(
            self.inputs, calibration=_FixedSource(self.inputs.calibration, fixers)
        )
        try:
            ctx = build_context(
                fixed_inputs,
                sensitivity_samples=len(self.ctx.samples),
                seed=0,
                cancel=self.cancel,
            )
        except (ValueError, ArithmeticError, PtqInputError, AnalysisUnavailable) as exc:
            log.warning("could not emulate %r: %s", fix, exc)
            return None
        return SimMeasurer(ctx, fixed_inputs, cancel=self.cancel, eval_limit=self.eval_limit)

    def measure_as_deployed(self, fix: str, settings: QuantSettings) -> Measure | None:
        """Rebuild the context with the evaluation images put through the mistake (the
        calibration data stays as given: fixed, then the mistake again)."""
        if self.inputs is None or self.inputs.calibration is None or self.ctx.eval is None:
            return None
        fixers = _fixers(self.inputs, fix)
        mistakes = _fixers(self.inputs, fix, inverse=True)
        if fixers is None or mistakes is None:
            return None
        from ptqtui.analysis.context import AnalysisUnavailable, build_context

        names = [lay.name for lay in self.inputs.layouts]
        pres = self.inputs.preprocessors
        wrapped = tuple(
            _Mistaken(pres[k] if pres is not None else None, mistakes.get(name))
            for k, name in enumerate(names)
        )
        deployed = dataclasses.replace(
            self.inputs,
            calibration=_FixedSource(self.inputs.calibration, fixers),
            preprocessors=wrapped,
        )
        try:
            ctx = build_context(
                deployed, sensitivity_samples=len(self.ctx.samples), seed=0, cancel=self.cancel
            )
        except (ValueError, ArithmeticError, PtqInputError, AnalysisUnavailable) as exc:
            log.warning("could not emulate the deployed pipeline for %r: %s", fix, exc)
            return None
        m = ctx.measure(settings, eval_limit=self.eval_limit, cancel=self.cancel)
        return Measure(m.similarity.cosine, m.top1, m.agreement, m.noise)


class _Mistaken:
    """A preprocessor that first makes the pipeline's mistake on the data."""

    def __init__(self, pre: Any, mistake: Fixer | None) -> None:
        self.pre = pre
        self.mistake = mistake

    def __call__(self, data: np.ndarray) -> np.ndarray:
        x = self.mistake(data) if self.mistake is not None else data
        return self.pre(x) if self.pre is not None else np.asarray(x, np.float32)


Fixer = Callable[[np.ndarray], np.ndarray]


def _fixers(inputs: LoadedInputs, fix: str, *, inverse: bool = False) -> dict[str, Fixer] | None:
    """Per calibration input name, the function that undoes `fix` (with `inverse`, the one
    that makes the mistake); None when it cannot be emulated."""
    out: dict[str, Fixer] = {}
    for spec, lay in zip(inputs.specs, inputs.layouts, strict=True):
        axis = 3 if lay.layout == "NHWC" else 1
        shape = lay.shape
        if fix == SWAP_CHANNELS:
            if len(shape) != 4 or shape[axis] != 3:
                continue
            out[lay.name] = lambda x, a=axis: np.flip(np.asarray(x), axis=a).copy()
        elif fix == UNDO_NORMALISATION:
            if spec.mean is None and spec.scale is None:
                continue
            out[lay.name] = _denormaliser(spec.mean, spec.scale, axis, len(shape), inverse)
        elif fix in (SCALE_UP, SCALE_DOWN):
            factor = 255.0 if (fix == SCALE_UP) != inverse else 1 / 255.0
            out[lay.name] = lambda x, f=factor: np.asarray(x, np.float32) * f
        elif fix == READ_NHWC:
            if lay.layout != "NCHW" or len(shape) != 4:
                continue
            n, c, h, w = shape
            if inverse:  # NCHW data written as HWC bytes, read back as CHW
                out[lay.name] = lambda x, s=shape: (
                    np.asarray(x).transpose(0, 2, 3, 1).reshape(s).copy()
                )
            else:
                out[lay.name] = lambda x, s=(n, h, w, c): (
                    np.asarray(x).reshape(s).transpose(0, 3, 1, 2).copy()
                )
        else:
            return None
    return out or None


def _denormaliser(
    mean: tuple[float, ...] | None,
    scale: tuple[float, ...] | None,
    axis: int,
    ndim: int,
    inverse: bool = False,
) -> Fixer:
    shape = [1] * ndim
    m = np.asarray(mean if mean else (0.0,), np.float32)
    s = np.asarray(scale if scale else (1.0,), np.float32)
    if m.size > 1:
        shape[axis] = m.size
        m = m.reshape(shape)
    if s.size > 1:
        shape_s = [1] * ndim
        shape_s[axis] = s.size
        s = s.reshape(shape_s)

    def undo(x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, np.float32) / s + m).astype(np.float32)

    def redo(x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float32) - m) * s).astype(np.float32)

    return redo if inverse else undo


class _FixedSource:
    """A calibration source whose samples come out with a fix applied (everything else is
    the wrapped source's)."""

    def __init__(self, source: Any, fixers: dict[str, Fixer]) -> None:
        self._source = source
        self._fixers = fixers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def __len__(self) -> int:
        return len(self._source)

    def __iter__(self) -> Iterator[Any]:
        return self.iter_samples()

    def _fix(self, sample: Any) -> Any:
        arrays = {
            k: (self._fixers[k](v) if k in self._fixers else v) for k, v in sample.arrays.items()
        }
        return dataclasses.replace(sample, arrays=arrays)

    def iter_samples(self, limit: int | None = None) -> Iterator[Any]:
        for sample in self._source.iter_samples(limit):
            yield self._fix(sample)

    def read(self, index: int) -> Any:
        return self._fix(self._source.read(index))
