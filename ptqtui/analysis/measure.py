"""What every analysis shares: model-output similarity over samples, top-1, cost and budget.

A *pass* is one ``Simulator.run`` of one sample. Analyses estimate their cost in passes, turn
it into seconds with the measured time of one fake-quant pass, and trim themselves to a
``budget_seconds`` (most promising work first), saying in their notes what they left out.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from ptqtui.analysis.results import Similarity
from ptqtui.progress import ProgressCallback
from ptqtui.quant import metrics

if TYPE_CHECKING:
    from ptqtui.quant.calibrate import Calibration
    from ptqtui.quant.scheme import Scheme
    from ptqtui.quant.simulate import Simulator

T = TypeVar("T")
Sample = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one analysis returns: its records, what it skipped or noticed, and its cost."""

    records: tuple[T, ...]
    notes: tuple[str, ...] = ()
    passes: int = 0
    seconds: float = 0.0
    complete: bool = True  # False: the time budget left some of its work out (see notes)


@dataclass(frozen=True, slots=True)
class Allowance:
    """What one analysis may spend and how it reports: seconds (None: no limit), progress
    callback, cancel event."""

    seconds: float | None = None
    progress: ProgressCallback | None = None
    cancel: threading.Event | None = None


UNLIMITED = Allowance()


def references(sim: Simulator, samples: Sequence[Sample]) -> list[dict[str, np.ndarray]]:
    """Float model outputs of ``samples`` (cached by the simulator, keyed by position)."""
    return [sim.reference(s, key=("analysis", i)) for i, s in enumerate(samples)]


def output_similarity(
    sim: Simulator,
    samples: Sequence[Sample],
    scheme: Scheme,
    cal: Calibration | None,
    refs: Sequence[Mapping[str, np.ndarray]],
    *,
    keep: bool = False,
) -> tuple[Similarity, list[float]]:
    """Model outputs under ``scheme`` vs float: all metrics averaged over outputs and samples
    (NaNs ignored), and the per-sample mean cosine. ``keep``: later runs sharing this
    scheme's prefix start from its crossing tensors (the curve's growing prefixes)."""
    sims: list[metrics.Similarity] = []
    per_sample: list[float] = []
    outs = sim.run_batch(samples, scheme, calibration=cal, keep=keep)
    for out, ref in zip(outs, refs, strict=True):
        these = [metrics.compare(ref[name], out[name]) for name in sim.outputs]
        sims += these
        per_sample.append(metrics.nanmean(s.cosine for s in these))
    return metrics.average(sims), per_sample


def top1(output: np.ndarray) -> np.ndarray:
    """Arg-max class per batch item of a classifier output ([N, C] or [N, C, 1, 1])."""
    a = np.asarray(output)
    a = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
    return np.argmax(a, axis=1)


def is_classifier(sim: Simulator, ref: Mapping[str, np.ndarray]) -> bool:
    """Whether the first model output looks like class scores: [N, C] with C > 1."""
    out = np.asarray(ref[sim.outputs[0]])
    return out.ndim >= 2 and int(np.prod(out.shape[1:])) == max(out.shape[1:]) > 1


def time_one_pass(
    sim: Simulator, sample: Sample, scheme: Scheme, cal: Calibration | None, repeat: int = 2
) -> float:
    """Seconds of one fake-quant pass (the best of ``repeat``)."""
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        sim.run(sample, scheme, calibration=cal)
        best = min(best, time.perf_counter() - t)
    return best


def affordable(budget_seconds: float | None, pass_seconds: float, wanted: int) -> int:
    """How many of ``wanted`` passes fit in the budget (all of them without one)."""
    if budget_seconds is None:
        return wanted
    if pass_seconds <= 0:
        return wanted
    return max(0, min(wanted, int(budget_seconds / pass_seconds)))


def prefix_note(what: str, sim: Simulator, n_samples: int) -> str | None:
    """Why ``what`` runs whole passes, when its samples' prefix activations exceed the cap."""
    if sim.plan is None or sim.prefix_fits(n_samples):
        return None
    need = sim.plan.prefix_bytes * n_samples / 2**20
    return (
        f"{what}: whole passes, not only the graph after the changed node: the prefix "
        f"activations of {n_samples} samples ({need:.0f} MiB) exceed the "
        f"{sim.prefixes.cap / 2**20:.0f} MiB cap"
    )


def cost_note(what: str, passes: int, pass_seconds: float) -> str:
    return f"{what}: {passes} forward passes, about {passes * pass_seconds:.1f} s"
