"""One streaming observation pass: ranges and |x| histograms of every quantization point.

Memory does not grow with the number of calibration samples: each tensor keeps a min, a max,
per-channel (axis 1) ranges and a fixed 2048-bin histogram of |x|; when a sample exceeds the
histogram's range, the range doubles and pairs of bins merge. Arrays are dropped after each
sample. Only the first ``keep`` samples are kept, for the searches and analyses that follow.
The graph runs a segment at a time (``Simulator.observe_float``): the tensors held at once are
one segment's, not the whole graph's (597 MiB a sample on a 640x640 detector). A segment's
tensors are binned side by side on a few threads, each a chunk at a time through buffers
that stay in cache (the histograms were 61 % of the pass on that detector, now 46 %).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.memory import release
from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.shelf import Shelf

if TYPE_CHECKING:
    from ptqtui.quant.simulate import Simulator

NUM_BINS = 2048  # TensorRT's entropy calibration histogram size
Sample = dict[str, np.ndarray]
# values binned at a time: the chunk's float, int32 and int64 scratch (2 MiB) stay in cache
CHUNK = 1 << 17


class _Scratch(threading.local):
    """Per-thread buffers the histogram reuses for every chunk of every tensor."""

    def __init__(self) -> None:
        self.scaled = np.empty(CHUNK, np.float32)
        self.narrow = np.empty(CHUNK, np.int32)
        self.index = np.empty(CHUNK, np.intp)


_SCRATCH = _Scratch()


def _abs_histogram(x: np.ndarray, per_unit: float) -> np.ndarray:
    """Counts of ``min(int(|x| * per_unit), NUM_BINS - 1)`` over finite ``x``, bin by bin."""
    # the float32 arithmetic of np.minimum(np.abs(x) * per_unit, NUM_BINS - 1).astype(int32),
    # a chunk at a time through buffers that stay in cache; the clip becomes a fold of the
    # bins past the last, the same counts since every index is >= 0 (|x| <= hist_max puts
    # the largest at NUM_BINS, by rounding)
    flat = x.reshape(-1)
    with np.errstate(over="ignore"):
        k = np.float32(per_unit)  # what ``float32_array *= per_unit`` multiplies by
    # a range under NUM_BINS / float32 max (~6e-36) overflows the float32 scale (0 * inf
    # made a negative index: bincount raised); such a tensor is scaled in float64
    wide = not np.isfinite(k)
    sc = _SCRATCH
    counts = np.zeros(NUM_BINS, np.int64)
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK]
        n = part.size
        scaled, narrow, index = sc.scaled[:n], sc.narrow[:n], sc.index[:n]
        if wide:
            np.copyto(narrow, np.abs(part, dtype=np.float64) * per_unit, casting="unsafe")
        else:
            np.abs(part, out=scaled)
            np.multiply(scaled, k, out=scaled)
            np.copyto(narrow, scaled, casting="unsafe")  # truncation: floor of a value >= 0
        np.copyto(index, narrow)  # bincount counts int64 indices without a copy of its own
        c = np.bincount(index, minlength=NUM_BINS)
        counts += c[:NUM_BINS]
        if c.size > NUM_BINS:
            counts[NUM_BINS - 1] += c[NUM_BINS:].sum()
    return counts


@dataclass(eq=False)
class TensorStats:
    """Running statistics of one tensor over the calibration samples."""

    count: int = 0
    min: float = float("inf")
    max: float = float("-inf")
    ch_min: np.ndarray | None = None  # per channel (axis 1)
    ch_max: np.ndarray | None = None
    hist: np.ndarray = field(default_factory=lambda: np.zeros(NUM_BINS, np.int64))
    hist_max: float = 0.0  # upper edge of the last bin; 0 while every value seen was 0
    zeros_pending: int = 0  # zeros seen before any non-zero value fixed the range
    nan_count: int = 0
    kl_cache: tuple[tuple[int, float], float] | None = field(default=None, repr=False)

    @property
    def abs_max(self) -> float:
        if self.count == 0:
            return 0.0
        return max(abs(self.min), abs(self.max))

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0:
            return
        lo = hi = None
        flat = x  # the values binned: x, or its contiguous view, or its finite values
        if x.ndim >= 2:
            # per channel over a contiguous [N, C, rest] view: a NaN or an infinity shows in
            # these, so the whole-tensor finite check runs only when one is there
            v = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
            flat = v
            cmin = v.min(axis=2).min(axis=0)
            cmax = v.max(axis=2).max(axis=0)
            if np.isfinite(cmin).all() and np.isfinite(cmax).all():
                if self.ch_min is None or self.ch_min.shape != cmin.shape:
                    self.ch_min, self.ch_max = cmin, cmax
                else:
                    np.minimum(self.ch_min, cmin, out=self.ch_min)
                    np.maximum(self.ch_max, cmax, out=self.ch_max)
                lo, hi = float(cmin.min()), float(cmax.max())
        if lo is None or hi is None:
            finite = np.isfinite(x)
            if not finite.all():
                self.nan_count += int(x.size - finite.sum())
                x = flat = x[finite]
                if x.size == 0:
                    return
            lo, hi = float(x.min()), float(x.max())
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)
        self.count += int(x.size)
        amax = max(abs(lo), abs(hi))
        if amax == 0.0:
            if self.hist_max == 0.0:
                self.zeros_pending += int(x.size)
            else:
                self.hist[0] += x.size
            return
        if self.hist_max == 0.0:
            self.hist_max = amax
            self.hist[0] += self.zeros_pending
            self.zeros_pending = 0
        while amax > self.hist_max:
            merged = self.hist.reshape(-1, 2).sum(axis=1)
            self.hist = np.concatenate([merged, np.zeros(NUM_BINS // 2, np.int64)])
            self.hist_max *= 2.0
        self.hist += _abs_histogram(flat, NUM_BINS / self.hist_max)

    @property
    def bin_width(self) -> float:
        return self.hist_max / NUM_BINS

    def abs_percentile(self, p: float) -> float:
        """Upper edge of the first bin where the |x| CDF reaches ``p`` (never above max |x|)."""
        if p >= 1.0 or self.hist_max == 0.0:
            return self.abs_max
        total = int(self.hist.sum())
        cdf = np.cumsum(self.hist)
        k = int(np.searchsorted(cdf, p * total, side="left"))
        return min((k + 1) * self.bin_width, self.abs_max)


OUTPUT_MEMORY = 32 << 20  # float outputs of kept samples held in memory; the rest on disk
# threads updating a segment's statistics, one tensor each: numpy releases the GIL in the
# passes over the values, and onnxruntime's threads sleep while they run
MAX_STATS_THREADS = 4


def stats_threads() -> int:
    """Threads for the statistics: the cores this process may use, at most MAX_STATS_THREADS."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_STATS_THREADS))


def _update_all(
    stats: Mapping[str, TensorStats],
    values: Mapping[str, np.ndarray],
    pool: ThreadPoolExecutor | None,
) -> None:
    """Update the statistics of every observed tensor in ``values``, the largest first."""
    todo = sorted(
        ((stats[t], v) for t, v in values.items() if t in stats), key=lambda sv: -sv[1].size
    )
    if pool is None or len(todo) < 2:
        for st, v in todo:
            st.update(v)
        return
    for f in [pool.submit(st.update, v) for st, v in todo]:  # one tensor per task
        f.result()


@dataclass(eq=False)
class Observation:
    """What one pass over the calibration samples saw."""

    stats: dict[str, TensorStats]  # tensor name -> statistics
    n_samples: int
    kept: Sequence[Sample]  # the first samples, for searches and analyses (a Shelf)
    # the float model outputs of the kept samples (the same pass: the references and the
    # float predictions need not run the model again); empty when the observation was read
    # from the cache
    outputs: Sequence[dict[str, np.ndarray]] = ()

    def tensor(self, name: str) -> TensorStats:
        return self.stats[name]


def observe(
    sim: Simulator,
    samples: Iterable[Sample],
    *,
    keep: int = 8,
    total: int | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    threads: int | None = None,
) -> Observation:
    """Run the float model once per sample and update every point's statistics.

    ``samples`` is iterated once; it may be a generator. ``threads`` update the statistics
    of a segment's tensors side by side (default ``stats_threads()``); the statistics do not
    depend on it.
    """
    tensors = sim.observed_tensors()
    stats = {t: TensorStats() for t in tensors}
    model_outputs = [o for o in sim.outputs if o in sim.available]
    kept = Shelf()
    outputs = Shelf(OUTPUT_MEMORY)
    n_threads = stats_threads() if threads is None else max(1, threads)
    pool = ThreadPoolExecutor(n_threads, "ptqtui-stats") if n_threads > 1 else None
    n = 0
    try:
        for sample in samples:
            check_cancel(cancel)
            collect = len(kept) < keep and len(outputs) == len(kept)
            out: dict[str, np.ndarray] = {}
            wanted = (
                [*tensors, *(o for o in model_outputs if o not in stats)] if collect else tensors
            )
            for values in sim.observe_float(sample, wanted):  # a segment of the graph at a time
                _update_all(stats, values, pool)
                if collect:
                    out.update(
                        (t, np.array(v, copy=True)) for t, v in values.items() if t in model_outputs
                    )
                del values
            if len(kept) < keep:
                kept.append(sample)
                if collect and len(out) == len(sim.outputs):
                    outputs.append(out)
            n += 1
            release()  # the sample's tensors, allocated and dropped, go back to the system
            report(progress, "calibration", n, total, "observing activations")
    finally:
        if pool is not None:
            pool.shutdown()
    return Observation(stats, n, kept, outputs)
