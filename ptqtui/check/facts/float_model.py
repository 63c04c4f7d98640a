"""The float model as the probes run it: the simulator's float path when the simulator was
built, else one plain onnxruntime session (lint-like runs, or the analysis failed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ptqtui.check.facts.missing import MissingFact

if TYPE_CHECKING:
    from ptqtui.inputs.model import ModelGraph
    from ptqtui.quant.simulate import Simulator

THREADS = 2  # intra-op threads of the plain session: a board or a shared server has few cores


class FloatModel:
    """Runs the float model on one set of feeds; outputs in the model's order."""

    def __init__(self, graph: ModelGraph, sim: Simulator | None = None) -> None:
        self.graph = graph
        self.sim = sim
        self._session: Any = None
        self._dtypes = {t.name: _np_dtype(t.dtype) for t in graph.inputs}

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs of the float model; feeds are cast to the model's input dtypes."""
        cast = {k: v.astype(self._dtypes.get(k, np.float32), copy=False) for k, v in feeds.items()}
        if self.sim is not None:
            return [np.asarray(v) for v in self.sim.run_float(cast).values()]
        return [np.asarray(o) for o in self._plain_session().run(None, cast)]

    @contextlib.contextmanager
    def keeping_no_prefixes(self) -> Iterator[None]:
        """Float runs inside leave nothing in the simulator's prefix cache: inputs never
        measured again (the probe's variants) would fill it to its cap (175 MiB more on a
        640 detector) or evict what the analyses' samples left there."""
        cache = self.sim.prefixes if self.sim is not None else None
        if cache is None:
            yield
            return
        cap = cache.cap
        cache.cap = 0  # every store refused; lookups still served
        try:
            yield
        finally:
            cache.cap = cap

    def _plain_session(self) -> Any:
        if self._session is None:
            import onnxruntime as ort  # lazy: slow to import, the TUI must start fast

            from ptqtui.ortlog import session_options

            options = session_options()
            options.intra_op_num_threads = THREADS
            options.inter_op_num_threads = 1
            graph = self.graph
            data: Any = str(graph.path) if graph.path.exists() else graph.model.SerializeToString()
            try:
                self._session = ort.InferenceSession(
                    data, options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                raise MissingFact(f"onnxruntime cannot run the float model: {exc}") from exc
        return self._session


def _np_dtype(name: str) -> Any:
    try:
        return np.dtype(name)
    except TypeError:
        return np.float32
