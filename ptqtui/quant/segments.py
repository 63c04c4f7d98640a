"""The fake-quant graph cut at a few checkpoints: run only the part after the node that changes.

The rewritten graph's nodes are in topological order. A few cut positions (``MAX_CUTS`` at
most) are chosen where the tensors crossing the cut are small and the work on either side
balanced; segment j runs the nodes between cut j and cut j+1 in its own session, reading the
crossing tensors at cut j and the switch/weight feeds it needs, and returns the crossing
tensors at cut j+1 (and any model output it produces). Chaining every segment is one whole
pass, same kernels, same answers.

A what-if whose feeds differ from an earlier run only in feeds read after cut j starts from
the crossing values that run left at cut j (the prefix state is keyed by a digest of every feed
read before the cut, so a match is exact, never assumed). ``PrefixCache`` keeps those values
per sample within a byte cap; past the cap runs start from the beginning.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

MAX_CUTS = 6  # checkpoints at most: 7 segments
MIN_NODES = 24  # a graph of fewer top-level nodes is not cut (one segment)
PREFIX_CAP = 384 << 20  # bytes of cached crossing tensors, all samples and states together
_SUFFIX = ("__q", "__raw")  # the rewritten graph's renamed tensors: <name>__q<i>, <name>__raw<i>


@dataclass(frozen=True)
class Segment:
    """Nodes ``start:stop`` of the rewritten graph and what they read and hand on."""

    start: int
    stop: int
    inputs: tuple[str, ...]  # crossing tensors at ``start`` (computed by earlier segments)
    feeds: tuple[str, ...]  # graph inputs it reads (model inputs, switches, weights)
    outputs: tuple[str, ...]  # crossing tensors at ``stop`` and model outputs made here
    produced: frozenset[str]  # every top-level tensor its nodes produce


@dataclass(frozen=True)
class Plan:
    """Where the graph is cut and the bytes of one sample's crossing tensors at each cut."""

    segments: tuple[Segment, ...]
    cut_bytes: tuple[int, ...]  # per cut (len(segments) - 1 of them), one sample

    @property
    def prefix_bytes(self) -> int:
        """Bytes of one sample's crossing tensors at every cut (one prefix state)."""
        return sum(self.cut_bytes)

    def first_reader(self, feed: str) -> int:
        """Index of the first segment reading ``feed`` (len(segments) when none does)."""
        for j, s in enumerate(self.segments):
            if feed in s.feeds:
                return j
        return len(self.segments)


def base_name(name: str) -> str:
    """The original model's tensor a rewritten graph's tensor holds the value of."""
    for suffix in _SUFFIX:
        head, sep, tail = name.rpartition(suffix)
        if sep and tail.isdigit():
            return head
    return name


def tensor_sizes(
    model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, int]]:
    """(elements, element bytes) of every tensor shape inference resolves with the model
    inputs at ``shapes`` (a batch of 1)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for vi in m.graph.input:
        shape = shapes.get(vi.name)
        if shape is None:
            continue
        tt = vi.type.tensor_type
        tt.shape.Clear()
        for d in shape:
            tt.shape.dim.add().dim_value = int(d)
    try:
        m = onnx.shape_inference.infer_shapes(m)
    except Exception:  # shape inference is a help: unknown sizes make a cut ineligible
        return {}
    sizes: dict[str, tuple[int, int]] = {}
    for vi in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
        tt = vi.type.tensor_type
        if not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim):
            continue
        n = int(np.prod([d.dim_value for d in tt.shape.dim], dtype=np.int64))
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).itemsize
        except (KeyError, TypeError):
            continue
        sizes[vi.name] = (n, item)
    return sizes


def plan(
    fq: onnx.ModelProto,
    model_inputs: Sequence[str],
    model_outputs: Sequence[str],
    sizes: Mapping[str, tuple[int, int]],
    max_cuts: int = MAX_CUTS,
) -> Plan:
    """Cut ``fq`` (the rewritten graph) at up to ``max_cuts`` positions: small crossing bytes,
    work balanced by the elements each original node produces."""
    from ptqtui.quant.simulate import _names_read

    nodes = list(fq.graph.node)
    n = len(nodes)
    graph_inputs = {i.name for i in fq.graph.input}
    inits = {i.name for i in fq.graph.initializer}
    producer: dict[str, int] = {}
    last_read: dict[str, int] = {}
    reads: list[set[str]] = []
    for i, node in enumerate(nodes):
        r = _names_read([node])
        reads.append(r)
        for t in r:
            last_read[t] = i
        for t in node.output:
            if t:
                producer[t] = i
    for t in model_outputs:
        last_read[t] = n
    # bytes crossing each position c (between node c-1 and node c): produced before, read at/after
    inf = float("inf")
    delta = np.zeros(n + 2)
    for t, p in producer.items():
        r = last_read.get(t, p)
        if r <= p:
            continue
        size = sizes.get(base_name(t))
        b = size[0] * size[1] if size else inf
        delta[p + 1] += b
        delta[r + 1] -= b
    crossing = np.cumsum(delta)[: n + 1]  # crossing[c], c in 0..n
    cuts: list[int] = []
    if n >= MIN_NODES and max_cuts > 0:
        work = np.array(
            [
                0.0 if _is_chain(node) else _work(node, sizes)
                for node in nodes  # chains cost little beside the original nodes
            ]
        )
        cum = np.concatenate([[0.0], np.cumsum(work)])
        total = cum[-1] or 1.0
        k = max_cuts + 1
        for j in range(1, k):
            lo = np.searchsorted(cum, total * (j - 0.5) / k)
            hi = np.searchsorted(cum, total * (j + 0.5) / k)
            lo, hi = max(int(lo), (cuts[-1] + 1) if cuts else 1), min(int(hi), n - 1)
            if hi < lo:
                continue
            window = crossing[lo : hi + 1]
            if not np.isfinite(window).any():
                continue
            target = np.searchsorted(cum, total * j / k)
            best = min(
                (c for c in range(lo, hi + 1) if np.isfinite(crossing[c])),
                key=lambda c: (crossing[c], abs(c - target)),
            )
            cuts.append(best)
    bounds = [0, *cuts, n]
    outputs_set = set(model_outputs)
    segments = []
    for a, b in itertools.pairwise(bounds):
        read = set().union(*reads[a:b]) if b > a else set()
        made = {t for i in range(a, b) for t in nodes[i].output if t}
        ins = tuple(sorted(t for t in read if t in producer and producer[t] < a))
        feeds = tuple(sorted(t for t in read if t in graph_inputs and t not in inits))
        outs = sorted(
            t
            for t, p in producer.items()
            if a <= p < b and (last_read.get(t, p) >= b or t in outputs_set)
        )
        segments.append(Segment(a, b, ins, feeds, tuple(outs), frozenset(made)))
    cut_bytes = tuple(int(crossing[c]) for c in cuts)
    return Plan(tuple(segments), cut_bytes)


def _is_chain(node: onnx.NodeProto) -> bool:
    return node.op_type == "If" and node.name.startswith("__q")


def _work(node: onnx.NodeProto, sizes: Mapping[str, tuple[int, int]]) -> float:
    got = [sizes[t][0] for t in node.output if t in sizes]
    return float(sum(got)) if got else 1.0


def segment_model(
    fq: onnx.ModelProto,
    seg: Segment,
    elem_types: Mapping[str, int],
    extra_outputs: Sequence[str] = (),
) -> onnx.ModelProto:
    """The session model of one segment: its nodes, crossing tensors in, crossing tensors
    (and ``extra_outputs`` it produces) out, every shape left free (samples may stack)."""
    from ptqtui.quant.simulate import _names_read

    g = fq.graph
    nodes = list(g.node)[seg.start : seg.stop]
    read = _names_read(nodes)
    by_input = {i.name: i for i in g.input}
    inputs = []
    for t in seg.inputs:
        inputs.append(
            helper.make_tensor_value_info(t, elem_types.get(base_name(t), TensorProto.FLOAT), None)
        )
    for t in seg.feeds:
        vi = onnx.ValueInfoProto()
        vi.CopyFrom(by_input[t])
        tt = vi.type.tensor_type
        if tt.HasField("shape") and len(tt.shape.dim) > 0 and not t.startswith("__q"):
            tt.shape.dim[0].ClearField("dim_value")
            tt.shape.dim[0].dim_param = "__batch"
        inputs.append(vi)
    outs = list(dict.fromkeys([*seg.outputs, *(t for t in extra_outputs if t in seg.produced)]))
    outputs = [
        helper.make_tensor_value_info(t, elem_types.get(base_name(t), TensorProto.FLOAT), None)
        for t in outs
    ]
    graph = helper.make_graph(
        nodes,
        f"{g.name or 'fakequant'}_{seg.start}",
        inputs,
        outputs,
        initializer=[t for t in g.initializer if t.name in read],
    )
    model = helper.make_model(graph, opset_imports=list(fq.opset_import))
    model.ir_version = fq.ir_version
    return model


def feed_digest(value: np.ndarray) -> bytes:
    """A short digest of one feed's value (its bytes, shape and dtype)."""
    a = np.ascontiguousarray(value)
    h = hashlib.blake2b(digest_size=12)
    h.update(a.dtype.str.encode() + str(a.shape).encode())
    h.update(a.data)
    return h.digest()


class PrefixCache:
    """Crossing values per (sample, cut, prefix state), least recently used out past a cap."""

    def __init__(self, cap: int = PREFIX_CAP) -> None:
        self.cap = cap
        self.bytes = 0
        self.hits = 0
        self.refused = 0  # stores refused because one entry would not fit under the cap
        self._data: OrderedDict[Hashable, dict[str, np.ndarray]] = OrderedDict()

    def get(self, key: Hashable) -> dict[str, np.ndarray] | None:
        hit = self._data.get(key)
        if hit is not None:
            self._data.move_to_end(key)
            self.hits += 1
        return hit

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data

    def put(self, key: Hashable, values: dict[str, np.ndarray]) -> None:
        size = sum(v.nbytes for v in values.values())
        if size > self.cap:
            self.refused += 1
            return
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= sum(v.nbytes for v in old.values())
        while self._data and self.bytes + size > self.cap:
            _, gone = self._data.popitem(last=False)
            self.bytes -= sum(v.nbytes for v in gone.values())
        self._data[key] = values
        self.bytes += size

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0
