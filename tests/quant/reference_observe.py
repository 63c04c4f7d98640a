"""The observation's statistics update as it was before issue 17, for the tests and
`benchmarks/bench_observe` to compare the current one with."""

from __future__ import annotations

import numpy as np

from ptqtui.quant.observe import NUM_BINS, TensorStats


class WholeArrayStats(TensorStats):
    """The update before issue 17: abs, scale, clip and int32 over the whole tensor at once
    (`_count`, which the test's reference replaces by counting one value at a time)."""

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.size == 0:
            return
        lo = hi = None
        if x.ndim >= 2:
            v = np.ascontiguousarray(x).reshape(x.shape[0], x.shape[1], -1)
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
                x = x[finite]
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
        self._count(x)

    def _count(self, x: np.ndarray) -> None:
        """Add |x| to the histogram, whose range covers it."""
        a = np.abs(x).reshape(-1)
        a *= NUM_BINS / self.hist_max
        np.minimum(a, NUM_BINS - 1, out=a)
        self.hist += np.bincount(a.astype(np.int32), minlength=NUM_BINS)
