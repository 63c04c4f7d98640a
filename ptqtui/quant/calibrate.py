"""Calibration: thresholds for every point from one Observation, by the converter's methods.

- ``max``: max |x| (or [min, max] when asymmetric); with ``max_percentile`` p < 1, the p-quantile
  of |x| read from the histogram (upper edge of the bin where the CDF reaches p).
- ``kl``: TensorRT's entropy calibration on the 2048-bin |x| histogram (bin 0, the exact zeros
  of a ReLU, flattened to bin 1's count as TensorRT does): for every cut-off i
  from 128 bins up, the reference distribution keeps bins [0, i) with the outliers folded into
  bin i-1, the candidate merges them into 128 levels and spreads each level back over its
  non-empty bins; the threshold is the upper edge of the cut-off with the minimum KL divergence.
  On a tensor with a small negative lobe (SiLU, hardswish) the lobe folds onto the smallest
  |x| bins; where kl's cut then costs more squared int8 error than max, the threshold of least
  squared error between the two is used instead (``clipping_guard``).
- ``default`` (reference §4, DESIGN): model-wide search over {max, kl} x max_percentile
  {1.0, 0.99995} x per_channel x asymmetric (16 candidates; kl with a percentile is the kl
  threshold capped at that percentile), ranked by model-output cosine on the first
  calibration sample.
- ``mix`` (reference §4): the best of {max, percentile 0.99995, kl}, then for every activation
  whose isolated sensitivity is below cosine 0.999, the best method for that activation alone.
  Each of those runs quantizes one point and restarts from the float run's cached crossing
  values at the cut before it; a method giving the point the same feeds is not run again.
- ``bias_correction``: per weighted node in topological order, add the per-channel mean error
  of its output to its bias; keep it where the node's output error falls, then keep the whole
  correction only if the model output improves. A trial runs only the segment of its node.
Weights are always max-calibrated, symmetric, per tensor or per output channel.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.policy import SENSITIVE_COSINE
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.observe import NUM_BINS, Observation, Sample, TensorStats
from ptqtui.quant.qparams import ActRange
from ptqtui.quant.scheme import QuantSettings, Scheme

if TYPE_CHECKING:
    from ptqtui.quant.simulate import Simulator

log = logging.getLogger(__name__)

KL_START_BIN = 128  # TensorRT: first candidate cut-off
KL_LEVELS = 128  # TensorRT: quantized levels of the candidate distribution
# a negative lobe: min < 0 with |min| below this fraction of max (SiLU -0.278, hardswish
# -0.375, GELU -0.17: a bounded lobe next to an unbounded positive side; ddddocr_rec's SiLU
# outputs reach 4-22). Its values fold onto the smallest |x| bins, where kl reads them as a
# spike worth fine resolution (docs/thresholds.md)
NEGATIVE_LOBE = 0.1
KL_EPS = 1e-4  # smoothing of empty bins (MXNet's _smooth_distribution)
DEFAULT_PERCENTILE = 0.99995  # the percentile of the default and mix searches (reference §3/4)
MIX_PICK_THRESHOLD = SENSITIVE_COSINE  # mix searches the nodes below this isolated cosine (§3)
SEARCH_SAMPLES = 1  # default/mix decide on the first calibration sample (reference §4)
BIAS_SAMPLES = 1  # bias_correction num_sample default (reference §4)


@dataclass(eq=False)
class Calibration:
    """Thresholds of every point. Treat as immutable: the simulator caches feeds per object."""

    method: str  # converter-style label: "max", "max-percentile:percentile=0.99995", "kl"
    activations: dict[str, ActRange]  # activation/output point key -> range
    weights: dict[str, np.ndarray]  # weight point key -> per-channel |w| thresholds
    per_channel: bool = False
    asymmetric: bool = False
    bias_deltas: dict[str, np.ndarray] = field(default_factory=dict)
    reduce_range_weights: bool = False  # 7-bit weights (onnxruntime's reduce_range)
    point_methods: dict[str, str] = field(default_factory=dict)  # mix: per-point method
    # the full observed range of every activation: an int16 point uses it (no clipping), since
    # percentile and kl trade clipping for resolution, which 16 bits do not need
    wide: dict[str, ActRange] = field(default_factory=dict)
    log: tuple[str, ...] = ()

    def replace(self, **changes: object) -> Calibration:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- thresholds
def kl_threshold(hist: np.ndarray, bin_width: float, *, flatten_zero_bin: bool = True) -> float:
    """TensorRT's minimum-KL threshold of an |x| histogram (see module docstring).

    As TensorRT's own calibrator (pytorch-quantization ``_compute_amax_entropy``) does, bin 0
    first takes the count of bin 1 (``flatten_zero_bin``): after a ReLU or ReLU6 it holds every
    exact zero, often half the tensor, and a spike that size makes every cut-off that merges
    bin 0 with its neighbours look worse than the smallest ones (m = 1 level per bin), so
    the search clips at 128-255 bins, a sixteenth to an eighth of the range (docs/thresholds.md).

    Per cut-off i: p = hist[:i] with the outliers folded into bin i-1; q merges hist[:i] into
    128 levels (bins j*m .. (j+1)*m, the last level running to i; m = i // 128) and spreads
    each level's count evenly over the bins where p is non-empty; both are smoothed as MXNet's
    ``_smooth_distribution`` does and KL(p || q) is taken. Written with one bincount per
    cut-off instead of per-level loops; ``tests/quant`` checks it against the loop version.
    """
    hist = np.array(hist, dtype=np.float64)
    n = hist.size
    if hist.sum() == 0:
        return 0.0
    if flatten_zero_bin and n > 1:
        hist[0] = hist[1]
        if hist.sum() == 0:
            return bin_width  # nothing but zeros: any positive threshold is exact
    if n <= KL_START_BIN:
        return n * bin_width
    suffix = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # suffix[i] = sum(hist[i:])
    index = np.arange(n)
    levels: dict[int, np.ndarray] = {}
    best_i, best_kl = n, math.inf
    for i in range(KL_START_BIN, n + 1):
        m = i // KL_LEVELS
        lev = levels.get(m)
        if lev is None:
            lev = levels[m] = np.minimum(index // m, KL_LEVELS - 1)
        lev = lev[:i]
        p = hist[:i].copy()
        p[i - 1] += suffix[i]
        nonzero = p != 0  # as TensorRT / MXNet: the folded outliers make the last bin count
        sums = np.bincount(lev, weights=hist[:i], minlength=KL_LEVELS)
        counts = np.bincount(lev, weights=nonzero, minlength=KL_LEVELS)
        q = (sums / np.maximum(counts, 1.0))[lev] * nonzero
        kl = _kl_smoothed(p, nonzero, q)
        if kl < best_kl:
            best_kl, best_i = kl, i
    return best_i * bin_width


def _kl_smoothed(p: np.ndarray, p_nonzero: np.ndarray, q: np.ndarray) -> float:
    """``_kl(p, q)`` with p's non-empty mask already known (the hot loop of kl_threshold)."""
    size = p.size
    n_p = int(np.count_nonzero(p_nonzero))
    q_nonzero = q != 0
    n_q = int(np.count_nonzero(q_nonzero))
    if n_q == 0:
        return math.inf
    ps = p if n_p == size else np.where(p_nonzero, p - KL_EPS * (size - n_p) / n_p, KL_EPS)
    qs = q if n_q == size else np.where(q_nonzero, q - KL_EPS * (size - n_q) / n_q, KL_EPS)
    if qs.min() <= 0 or ps.min() <= 0:
        return _kl(p, q)  # a bin smoothed to zero: the general path
    tp, tq = float(ps.sum()), float(qs.sum())
    return float(np.dot(ps, np.log(ps / qs))) / tp + math.log(tq / tp)


def _smooth(h: np.ndarray) -> np.ndarray:
    """MXNet's ``_smooth_distribution``: empty bins get ``KL_EPS``, taken evenly from the others."""
    zeros = h == 0
    n_zeros = int(zeros.sum())
    n_nonzeros = h.size - n_zeros
    if n_nonzeros == 0:
        return h
    eps1 = KL_EPS * n_zeros / n_nonzeros
    return h + np.where(zeros, KL_EPS, -eps1)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) of two unnormalised histograms, both smoothed first (TensorRT / MXNet)."""
    if p.sum() == 0 or q.sum() == 0:
        return math.inf
    ps, qs = _smooth(p), _smooth(q)
    if (qs <= 0).any() or (ps < 0).any():
        return math.inf
    pn, qn = ps / ps.sum(), qs / qs.sum()
    mask = pn > 0
    return float(np.sum(pn[mask] * np.log(pn[mask] / qn[mask])))


def activation_range(
    stats: TensorStats, method: str, percentile: float | None, asymmetric: bool
) -> ActRange:
    """The range of one activation by ``max`` (with percentile) or ``kl``."""
    if stats.count == 0:
        return ActRange(0.0, 0.0, not asymmetric)
    if method == "kl":
        t = kl_threshold(stats.hist, stats.bin_width) if stats.hist_max > 0 else 0.0
        t = min(t, stats.abs_max)
        if negative_lobe(stats):
            t = clipping_guard(stats, t)
    elif percentile is not None and percentile < 1.0:
        t = stats.abs_percentile(percentile)
    else:
        t = stats.abs_max
    if not asymmetric:
        return ActRange(-t, t, True)
    return ActRange(max(stats.min, -t), min(stats.max, t), False)


def negative_lobe(stats: TensorStats) -> bool:
    """Whether the tensor has a small negative lobe (SiLU, hardswish, GELU: a bounded minimum
    far below the maximum), which the |x| histogram folds onto the small positive values."""
    return stats.min < 0 and -stats.min < NEGATIVE_LOBE * stats.max


def rounding_error(stats: TensorStats, thresholds: np.ndarray) -> np.ndarray:
    """Mean squared int8 error of the |x| histogram at each threshold: the rounding noise
    (step^2 / 12, step = t / 127) inside, the clipped distance beyond (bin centres)."""
    h = stats.hist.astype(np.float64)
    c = (np.arange(h.size) + 0.5) * stats.bin_width
    t = np.asarray(thresholds, np.float64)
    k = np.searchsorted(c, t, side="right")  # bins at or below each threshold
    inside = np.concatenate([[0.0], np.cumsum(h)])[k]
    tail = np.concatenate([np.cumsum((h * c * c)[::-1])[::-1], [0.0]])[k]
    tail1 = np.concatenate([np.cumsum((h * c)[::-1])[::-1], [0.0]])[k]
    tail0 = np.concatenate([np.cumsum(h[::-1])[::-1], [0.0]])[k]
    clipped = tail - 2 * t * tail1 + t * t * tail0
    return (inside * (t / 127) ** 2 / 12 + clipped) / max(h.sum(), 1.0)


def clipping_guard(stats: TensorStats, t: float) -> float:
    """kl's threshold, unless it costs more squared error than max: then the threshold of
    least squared error between the two (docs/thresholds.md, "kl on SiLU networks")."""
    top = stats.abs_max
    if stats.hist_max <= 0 or t >= top:
        return t
    err_kl, err_max = rounding_error(stats, np.array([t, top]))
    if err_kl <= err_max:
        return t
    w = stats.bin_width
    edges = np.arange(int(t / w) + 1, int(np.ceil(top / w)) + 1) * w
    edges = np.append(edges[edges < top], top)
    return float(edges[int(np.argmin(rounding_error(stats, edges)))])


def weight_thresholds(w: np.ndarray, axis: int, per_channel: bool) -> np.ndarray:
    """Max |w| per output channel, or the tensor's max |w| repeated per channel."""
    a = np.abs(np.asarray(w, dtype=np.float32))
    axes = tuple(k for k in range(a.ndim) if k != axis)
    ch = a.max(axis=axes) if axes else a
    if not per_channel:
        ch = np.full_like(ch, ch.max() if ch.size else 0.0)
    return ch.astype(np.float32)


def method_label(method: str, percentile: float | None, per_channel: bool) -> str:
    """The converter's name of a calibration method (``Select <label> method.``)."""
    if method == "kl":
        label = f"kl:num_bin={NUM_BINS}"
        if percentile is not None and percentile < 1.0:
            label += f",percentile={percentile:g}"
    elif percentile is not None and percentile < 1.0:
        label = f"max-percentile:percentile={percentile:g}"
    else:
        label = "max"
    return label + (",per_channel" if per_channel else "")


# ---------------------------------------------------------------------- simple methods
def calibrate_simple(
    sim: Simulator,
    obs: Observation,
    method: str,
    *,
    percentile: float | None = None,
    per_channel: bool = False,
    asymmetric: bool = False,
    reduce_range_weights: bool = False,
) -> Calibration:
    """One method for every point: ``max`` (optionally with a percentile) or ``kl``."""
    acts: dict[str, ActRange] = {}
    wide: dict[str, ActRange] = {}
    for p in sim.points:
        if p.kind in ("activation", "output") and p.tensor in obs.stats:
            stats = obs.stats[p.tensor]
            wide[p.key] = activation_range(stats, "max", None, asymmetric)
            if method == "kl":
                acts[p.key] = _kl_range(stats, asymmetric, percentile)
            else:
                acts[p.key] = activation_range(stats, "max", percentile, asymmetric)
    weights = {
        p.key: weight_thresholds(sim.graph.initializers[p.tensor], p.axis, per_channel)
        for p in sim.points
        if p.kind == "weight"
    }
    return Calibration(
        method=method_label(method, percentile, per_channel),
        activations=acts,
        weights=weights,
        per_channel=per_channel,
        asymmetric=asymmetric,
        reduce_range_weights=reduce_range_weights,
        wide=wide,
    )


def _kl_range(stats: TensorStats, asymmetric: bool, percentile: float | None = None) -> ActRange:
    """kl thresholds are costly (1920 candidates); cache them on the statistics object. With
    a percentile below 1 the threshold is also capped at that percentile of |x| (the default
    search's kl x percentile candidates)."""
    token = (stats.count, stats.hist_max)
    if stats.kl_cache is None or stats.kl_cache[0] != token:
        stats.kl_cache = (token, activation_range(stats, "kl", None, False).threshold)
    t = stats.kl_cache[1]
    if percentile is not None and percentile < 1.0:
        t = min(t, stats.abs_percentile(percentile))
    if not asymmetric:
        return ActRange(-t, t, True)
    return ActRange(max(stats.min, -t), min(stats.max, t), False)


# ---------------------------------------------------------------------- searches
def output_cosine(
    sim: Simulator,
    samples: Sequence[Sample],
    scheme: Scheme,
    cal: Calibration,
    refs: Sequence[Mapping[str, np.ndarray]] | None = None,
) -> float:
    """Mean cosine of the model outputs, quantized vs float, over ``samples`` (NaN-safe);
    ``refs``: their float outputs when known (else looked up by the samples' content)."""
    from ptqtui.quant.metrics import cosine

    values: list[float] = []
    outs = sim.run_batch(samples, scheme, calibration=cal)
    for k, (sample, out) in enumerate(zip(samples, outs, strict=True)):
        ref = refs[k] if refs is not None else sim.reference(sample)
        values += [cosine(ref[name], out[name]) for name in sim.outputs]
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _rank_key(item: tuple[float, int]) -> tuple[bool, float, int]:
    score, order = item
    return (math.isnan(score), -score if not math.isnan(score) else 0.0, order)


def search_default(
    sim: Simulator,
    obs: Observation,
    scheme: Scheme,
    samples: Sequence[Sample],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Calibration:
    """Model-wide search of reference §4, logging the converter's lines."""
    grid = []
    for method in ("max", "kl"):
        for pct in (None, DEFAULT_PERCENTILE):
            for per_channel in (True, False):
                for asymmetric in (True, False):
                    grid.append((method, pct, per_channel, asymmetric))
    lines = ["Run calibration model with modelwise search method."]
    scored: list[tuple[float, int, Calibration]] = []
    for k, (method, pct, pc, asym) in enumerate(grid):
        check_cancel(cancel)
        cal = calibrate_simple(sim, obs, method, percentile=pct, per_channel=pc, asymmetric=asym)
        score = output_cosine(sim, samples, scheme, cal)
        scored.append((score, k, cal))
        report(progress, "calibration", k + 1, len(grid), f"default search: {cal.method}")
    scored.sort(key=lambda t: _rank_key((t[0], t[1])))
    best = scored[0][2]
    lines.append(f"Select {best.method} method.")
    if best.per_channel:
        lines.append("Perchannel quantization is enabled.")
    if best.asymmetric:
        lines.append("Asymmetric quantization is enabled.")
    for line in lines:
        log.info(line)
    return best.replace(log=(*best.log, *lines))


def search_mix(
    sim: Simulator,
    obs: Observation,
    scheme: Scheme,
    samples: Sequence[Sample],
    *,
    per_channel: bool = False,
    asymmetric: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Calibration:
    """Layer-wise search of reference §4 (mix)."""
    lines = ["Run calibration model with layerwise search method."]
    cands = [
        calibrate_simple(sim, obs, m, percentile=p, per_channel=per_channel, asymmetric=asymmetric)
        for m, p in (("max", None), ("max", DEFAULT_PERCENTILE), ("kl", None))
    ]
    scores = [output_cosine(sim, samples, scheme, c) for c in cands]
    order = sorted(range(len(cands)), key=lambda k: _rank_key((scores[k], k)))
    best = cands[order[0]]
    act_keys = [k for k in scheme.active() if sim.graph.points[k].kind == "activation"]
    if sim.segmented:
        # every run below quantizes one point: it restarts from the float run's crossing values
        # at the cut before that point, which this float run keeps (the references may be
        # known from earlier without them in the prefix cache; then each ran the whole graph)
        sim.run_batch(samples)
    refs = [sim.reference(s) for s in samples]  # looked up once, not once a run
    sens: dict[str, float] = {}
    for n, key in enumerate(act_keys):
        check_cancel(cancel)
        sens[key] = output_cosine(sim, samples, scheme.only([key]), best, refs)
        report(progress, "calibration", n + 1, len(act_keys), "mix: activation sensitivity")
    sensitive = [k for k in act_keys if not sens[k] >= MIX_PICK_THRESHOLD]
    lines.append(
        "Topk is not set by the user, select top-N nodes with cosine-similarity less than "
        f"{MIX_PICK_THRESHOLD} to merge multi calibration methods."
    )
    acts = dict(best.activations)
    methods = {k: best.method for k in acts}
    for key in sensitive:
        check_cancel(cancel)
        one = scheme.only([key])
        results = [(sens[key], order[0], best)]
        for k in order[1:]:
            if sim.first_changed_step(one, best, cands[k]) is None:  # the same feeds: same run
                results.append((sens[key], k, cands[k]))
            else:
                results.append((output_cosine(sim, samples, one, cands[k], refs), k, cands[k]))
        results.sort(key=lambda t: _rank_key((t[0], t[1])))
        chosen = results[0][2]
        acts[key] = chosen.activations[key]
        methods[key] = chosen.method
        lines.append(f"Merge_Info {key[4:]}: {chosen.method} cosine {results[0][0]:.6f}")
    for line in lines:
        log.info(line)
    return best.replace(
        method=f"mix({best.method})",
        activations=acts,
        point_methods=methods,
        log=(*best.log, *lines),
    )


def correct_bias(
    sim: Simulator,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Sample],
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Calibration:
    """Bias correction of reference §4, node by node in topological order.

    A trial changes one node's bias: it runs only the steps (segments, ``Simulator.run_step``)
    from the first one reading that bias to the one producing the node's output, from what
    the current calibration's run handed on there; a kept trial's steps become the current
    run's, and the steps after it are run again under the new calibration when first needed.
    Same values as a whole pass per trial, about one segment's cost a trial."""
    lines = [
        f"Run calibration model with bias correction method with bias samples: {len(samples)}."
    ]
    nodes = [
        sim.graph.nodes[sim.graph.points[k].nodes[0]]
        for k in scheme.active()
        if sim.graph.points[k].kind == "bias"
    ]
    nodes.sort(key=lambda n: n.index)
    if not nodes or not samples:
        return cal
    names = [n.outputs[0] for n in nodes]
    steps = sim.exposed_steps(samples[0])
    step_of = {name: next(j for j, made in enumerate(steps) if name in made) for name in names}
    wanted = [[n for n in dict.fromkeys(names) if step_of[n] == j] for j in range(len(steps))]
    refs = [_Walk(sim, s, wanted, None, None) for s in samples]
    deltas: dict[str, np.ndarray] = dict(cal.bias_deltas)
    current = cal
    outs = [_Walk(sim, s, wanted, scheme, current) for s in samples]
    for k, node in enumerate(nodes):
        check_cancel(cancel)
        name = names[k]
        at = step_of[name]
        ref_values = [r.value(name, at) for r in refs]
        cur_values = [o.value(name, at) for o in outs]
        err_before = float(
            np.mean([np.mean((r - o) ** 2) for r, o in zip(ref_values, cur_values, strict=True)])
        )
        diff = np.stack([_channel_mean(r - o) for r, o in zip(ref_values, cur_values, strict=True)])
        key = node.bias_point
        assert key is not None
        trial_deltas = {**deltas, key: deltas.get(key, 0.0) + diff.mean(axis=0).astype(np.float32)}
        trial = current.replace(bias_deltas=trial_deltas)
        start = sim.first_changed_step(scheme, current, trial)
        if start is not None and start <= at:  # else this output cannot move
            trial_outs = [o.branch(trial, start, at) for o in outs]
            err_after = float(
                np.mean(
                    [
                        np.mean((r - o.value(name, at)) ** 2)
                        for r, o in zip(ref_values, trial_outs, strict=True)
                    ]
                )
            )
            if err_after < err_before:
                deltas, current, outs = trial_deltas, trial, trial_outs
                lines.append(
                    f"Bias_Correction_Info {node.name}: mse {err_before:.6g} -> {err_after:.6g}"
                )
        if k + 1 == len(nodes) or step_of[names[k + 1]] > at:  # this step's values done with
            for w in (*refs, *outs):
                w.forget(at)
        report(progress, "calibration", k + 1, len(nodes), "bias correction")
    before = output_cosine(sim, samples, scheme, cal)
    after = output_cosine(sim, samples, scheme, current)
    keep = after > before or (math.isnan(before) and not math.isnan(after))
    lines.append(
        f"bias correction: output cosine {before:.6f} -> {after:.6f}, "
        + ("kept" if keep else "discarded")
    )
    for line in lines:
        log.info(line)
    chosen = current if keep else cal
    return chosen.replace(log=(*chosen.log, *lines))


class _Walk:
    """One sample's exposing pass under one calibration, run a step at a time when a value is
    first asked for; what each step hands on is kept, so a trial can restart after it."""

    def __init__(
        self,
        sim: Simulator,
        sample: Sample,
        wanted: Sequence[Sequence[str]],
        scheme: Scheme | None,
        cal: Calibration | None,
    ) -> None:
        self.sim, self.sample, self.wanted = sim, sample, wanted
        self.scheme, self.cal = scheme, cal
        self.values: list[dict[str, np.ndarray]] = []  # per step run so far
        self.handed: list[dict[str, np.ndarray]] = []  # what each step hands on
        self.counted = False  # one pass a walk, however many times it is continued

    def value(self, name: str, step: int) -> np.ndarray:
        """The value of ``name``, produced by ``step``, running the steps up to it if needed."""
        self.run_to(step)
        return self.values[step][name]

    def run_to(self, step: int) -> None:
        """Run the steps not run yet up to ``step`` (restarting after the last run)."""
        while len(self.values) <= step:
            j = len(self.values)
            got, handed = self.sim.run_step(
                j,
                self.sample,
                self.handed[j - 1] if j else {},
                self.wanted[j],
                self.scheme,
                calibration=self.cal,
                new_pass=not self.counted,
            )
            self.counted = True
            self.values.append(got)
            self.handed.append(handed)

    def branch(self, cal: Calibration, start: int, stop: int) -> _Walk:
        """The walk under ``cal``, whose feeds agree with this one's before step ``start``:
        this walk's steps before it, then steps ``start`` to ``stop`` run under ``cal``."""
        self.run_to(start - 1)
        other = _Walk(self.sim, self.sample, self.wanted, self.scheme, cal)
        other.values, other.handed = self.values[:start], self.handed[:start]
        other.run_to(stop)
        return other

    def forget(self, step: int) -> None:
        """Drop the values of ``step`` (what it hands on stays for restarts)."""
        if step < len(self.values):
            self.values[step] = {}


def _channel_mean(d: np.ndarray) -> np.ndarray:
    if d.ndim < 2:
        return d.reshape(-1)
    axes = (0, *range(2, d.ndim))
    return d.mean(axis=axes)


def calibrate(
    sim: Simulator,
    obs: Observation,
    settings: QuantSettings | None = None,
    *,
    scheme: Scheme | None = None,
    samples: Sequence[Sample] | None = None,
    reduce_range_weights: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Calibration:
    """Calibrate every point of ``sim`` as ``settings`` ask (searches run on ``samples``,
    by default the first calibration sample, as the converter does)."""
    s = settings or QuantSettings()
    sch = scheme if scheme is not None else sim.scheme(s)
    search = list(samples) if samples is not None else list(obs.kept[:SEARCH_SAMPLES])
    ctype = s.calibration_type
    if ctype == "default":
        if not search:
            raise ValueError("the default search needs at least one calibration sample")
        cal = search_default(sim, obs, sch, search, progress=progress, cancel=cancel)
    elif ctype == "mix":
        if not search:
            raise ValueError("the mix search needs at least one calibration sample")
        cal = search_mix(
            sim,
            obs,
            sch,
            search,
            per_channel=s.per_channel,
            asymmetric=s.asymmetric,
            progress=progress,
            cancel=cancel,
        )
    else:
        method = "kl" if ctype == "kl" else "max"
        note: tuple[str, ...] = ()
        if ctype in ("load", "skip"):
            note = (f"calibration_type {ctype}: simulated as max on the given samples",)
        cal = calibrate_simple(
            sim,
            obs,
            method,
            percentile=s.max_percentile if method == "max" else None,
            per_channel=s.per_channel,
            asymmetric=s.asymmetric,
        )
        cal = cal.replace(log=(*note, f"Select {cal.method} method."))
    if reduce_range_weights:
        cal = cal.replace(reduce_range_weights=True)
    if s.bias_correction:
        bias_samples = list(search[:BIAS_SAMPLES]) if search else list(obs.kept[:BIAS_SAMPLES])
        cal = correct_bias(sim, cal, sch, bias_samples, progress=progress, cancel=cancel)
    return cal
