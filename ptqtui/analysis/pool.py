"""Worker processes for independent what-ifs (sensitivity's per-node measurements).

Each worker builds its own ``Simulator`` (its own sessions, onnxruntime's intra-op threads
split so workers x threads = cores) from the model bytes, and receives the calibration, the
scheme, the samples and their float references once, when it starts. A task is the point keys
one what-if quantizes; the answer is what the same function gives in one process, so the
results do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from ptqtui.quant.calibrate import Calibration
    from ptqtui.quant.scheme import Scheme
    from ptqtui.quant.simulate import Simulator

_STATE: dict[str, Any] = {}  # in a worker: its simulator and what every task shares


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers(n_cores: int | None = None) -> int:
    """1 on up to 2 cores (one process keeps both busy), else half the cores."""
    n = cores() if n_cores is None else n_cores
    return 1 if n <= 2 else n // 2


def threads_per_worker(workers: int, n_cores: int | None = None) -> int:
    """onnxruntime intra-op threads of each worker: workers x threads = cores."""
    n = cores() if n_cores is None else n_cores
    return max(1, n // max(1, workers))


def _start(
    model_bytes: bytes,
    cal: Calibration,
    scheme: Scheme,
    samples: Sequence[Mapping[str, np.ndarray]],
    refs: Sequence[Mapping[str, np.ndarray]],
    batching: tuple[bool | None, int, str | None],
    threads: int,
) -> None:
    import onnx

    from ptqtui.quant.simulate import Simulator

    sim = Simulator(onnx.load_from_string(model_bytes), cal, intra_op_threads=threads)
    sim.batchable, sim.batch_size, sim.batch_note = batching
    for i, s in enumerate(samples):
        sim.reference(s, key=("pool", i))  # the float prefixes every what-if starts from
    sim.forward_passes = 0
    _STATE.update(sim=sim, cal=cal, scheme=scheme, samples=samples, refs=refs)


def _task(job: tuple[Callable[..., Any], tuple[str, ...], int, int]) -> Any:
    fn, keys, lo, hi = job
    st = _STATE
    only = st["scheme"].only(keys)
    return fn(st["sim"], only, st["cal"], st["samples"][lo:hi], st["refs"][lo:hi])


class WorkerPool:
    """``workers`` processes, each with its own simulator of ``sim``'s model."""

    def __init__(
        self,
        sim: Simulator,
        cal: Calibration,
        scheme: Scheme,
        samples: Sequence[Mapping[str, np.ndarray]],
        refs: Sequence[Mapping[str, np.ndarray]],
        workers: int,
        *,
        threads: int | None = None,
    ) -> None:
        self.workers = workers
        per = threads if threads is not None else threads_per_worker(workers)
        ctx = multiprocessing.get_context("spawn")  # onnxruntime's threads do not survive fork
        batching = (sim.batchable, sim.batch_size, sim.batch_note)
        self._pool = ctx.Pool(
            workers,
            initializer=_start,
            initargs=(
                sim.graph.model.SerializeToString(),
                cal,
                scheme,
                tuple(dict(s) for s in samples),
                tuple(dict(r) for r in refs),
                batching,
                per,
            ),
        )

    def map(
        self, fn: Callable[..., Any], jobs: Iterable[tuple[str, ...]], lo: int, hi: int
    ) -> Iterator[Any]:
        """``fn(sim, scheme.only(keys), cal, samples[lo:hi], refs[lo:hi])`` for each keys,
        in order, as they finish (``fn`` must be a module-level function)."""
        return self._pool.imap(_task, [(fn, tuple(k), lo, hi) for k in jobs])

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
