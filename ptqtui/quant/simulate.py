"""The fake-quant simulator: one rewritten graph, one onnxruntime session, every what-if a run.

Every activation and output point becomes a gated QuantizeLinear/DequantizeLinear pair whose
parameters are graph inputs::

    y = If(on, then=If(wide, then=DQ16(Q16(x, s, zp16)), else=DQ8(Q8(x, s, zp8))), else=x)

``on`` switches the point between quantized and exactly float (the float branch is an
Identity: a switched-off point costs no arithmetic), ``wide`` picks int16 over int8, ``s`` and
the zero points come from the calibration. The Q/DQ are the ``com.microsoft`` ones, which
onnxruntime implements for int8 and int16 at any opset (the standard ops need opset 21 for
int16).

Weights and biases of weighted nodes are graph inputs: the simulator feeds the float arrays
or, for a quantized point, the array rounded once per calibration in numpy (symmetric int8
per channel or per tensor, ``round(w / s)`` half to even and clipped, as QuantizeLinear does;
biases to ``s_in * s_w`` in int32, after the bias-correction delta). Nothing is computed in the
graph for them, and a switched-off weight is the user's own array.

A dtype, a threshold or a calibration method changes by feeding other values, never by
re-exporting the model or opening a new session. Graph optimisation is off, so every tensor
keeps the model's name and any of them can be fetched.

Sessions are opened once per simulator, never per what-if. On a graph large enough to cut
(``segments.py``), the first run cuts it at a few checkpoints: what-ifs measured at the model
outputs (sensitivity, curve, sweep) run in one session per segment exposing only the crossing
tensors, from the latest cut whose prefix an earlier run left in the cache; observation, the
node table and any fetch of internal tensors run in one arena-less session per segment that
exposes the segment's tensors (one segment's values held at once). Uncut (small) graphs run in
``lean_session`` (model outputs only: exposed tensors cannot share memory and cost a mobile
CNN about 40 % of a pass) and ``session`` (every tensor exposed), as before.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import TensorProto, helper

from ptqtui.ortlog import session_options
from ptqtui.quant.graph import Point, QuantGraph
from ptqtui.quant.qparams import activation_qparams, weight_qmax, weight_scales
from ptqtui.quant.scheme import QuantSettings, Scheme, build_scheme
from ptqtui.quant.segments import (
    PREFIX_CAP,
    Plan,
    PrefixCache,
    feed_digest,
    plan,
    segment_model,
    tensor_sizes,
)

if TYPE_CHECKING:
    from ptqtui.quant.calibrate import Calibration

MS_DOMAIN = "com.microsoft"
BATCH = 8  # samples stacked in one run, at most
# Stacked input bytes per run, at most: a run's activations grow with its batch, and a 640x640
# detector stacked 8 deep held 3.2 GB during sensitivity where one sample at a time costs the
# same time per sample (its passes are large enough to keep both cores busy).
BATCH_BYTES = 8 << 20
# The graph is cut into segments (what-ifs from cached prefixes) only when fewer than this many
# samples stack in one run: measured on EfficientNet-Lite1 240 (8 stacked), the segmented
# analyses took 123 s and 1424 MiB against 67 s and 1077 MiB whole; on PP-OCRv4 det 640 (one
# sample a run) one node's what-if from its segment costs 0.38 of a whole pass.
SEGMENT_BELOW_BATCH = 2
log = logging.getLogger(__name__)
_FEED_CACHE = 16
_WEIGHT_CACHE = (
    4  # calibrations whose rounded weights are kept  # (scheme, calibration) feed dicts kept
)
_REF_CACHE = 4096  # float reference outputs kept (model outputs only: small)
_SCALAR_SIGS = 1 << 16  # digests of 0-d feeds remembered by value, at most
_SAMPLE_KEYS = 256  # sample digests kept (by the identity of the array, weakly)


class Simulator:
    """Owns the fake-quant graph of one model and the onnxruntime session that runs it."""

    def __init__(
        self,
        model: onnx.ModelProto,
        calibration: Calibration | None = None,
        *,
        intra_op_threads: int | None = None,
        segmented: bool | None = None,
        prefix_cap: int = PREFIX_CAP,
    ) -> None:
        import onnxruntime as ort  # lazily: the TUI imports this module and must start fast

        self.graph = QuantGraph(model)
        self.calibration = calibration
        self.points: tuple[Point, ...] = tuple(self.graph.points.values())
        self._index = {p.key: i for i, p in enumerate(self.points)}
        self.fq_model = build_fakequant_model(self.graph)
        opts = session_options()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if intra_op_threads:
            opts.intra_op_num_threads = intra_op_threads
        self._opts = opts
        # the whole graph exposing every tensor: built now, so a model onnxruntime cannot load
        # fails here, where callers expect it; it runs only when the graph is not segmented
        self._session: object | None = ort.InferenceSession(
            self.fq_model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
        )
        self.available = frozenset(o.name for o in self.fq_model.graph.output)
        self._lean: object | None = None  # the lean session, built when first needed
        self._lean_outputs = frozenset(self.graph.outputs)
        # the graph cut at a few checkpoints (planned on the first lean run, when the sample
        # shapes are known): what-ifs run only the segments after the first changed feed
        self.segmented = segmented
        self.plan: Plan | None = None
        self._seg_sessions: list[object] = []
        self._observers: list[object] = []
        self._carry: list[frozenset[str]] = []
        self.prefixes = PrefixCache(prefix_cap)
        self.segment_runs = 0  # segment sessions run (a whole pass from cut 0 runs them all)
        self.skipped_segments = 0  # segment runs saved by starting after a cached prefix
        self._sample_keys: OrderedDict[int, tuple[weakref.ref, str]] = OrderedDict()
        self._float_digests: dict[str, bytes] = {}
        self._scalar_sigs: dict[tuple[str, bytes], bytes] = {}
        self._feeds: OrderedDict[
            Hashable, tuple[object, dict[str, np.ndarray], dict[str, bytes]]
        ] = OrderedDict()
        self._refs: OrderedDict[Hashable, dict[str, np.ndarray]] = OrderedDict()
        self._float_weights: dict[str, np.ndarray] = {}
        self._wcache: OrderedDict[Hashable, tuple[object, np.ndarray, bytes]] = OrderedDict()
        self._n_weights = sum(1 for p in self.points if p.kind == "weight")
        self._float_feeds, self._float_sigs = self._make_feeds(None, None)
        self.forward_passes = 0  # sample passes so far: analyses report their cost in these
        self.batchable: bool | None = None  # samples stack along axis 0 (checked on first use)
        self.batch_size = BATCH  # samples per stacked run (bounded by BATCH_BYTES when checked)
        self.batch_note: str | None = None  # why samples run one at a time, when they do

    # ------------------------------------------------------------------ names
    @property
    def inputs(self) -> tuple[str, ...]:
        return self.graph.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.graph.outputs

    def observed_tensors(self) -> list[str]:
        """Tensors whose ranges calibration needs: every activation and output point."""
        return list(
            dict.fromkeys(p.tensor for p in self.points if p.kind in ("activation", "output"))
        )

    def rounded_name(self, key: str) -> str:
        """Name of the tensor an activation point hands to its consumers (rounded when on)."""
        p = self.graph.points[key]
        if p.kind == "output":
            return p.tensor
        if p.kind != "activation":
            raise ValueError(f"{key} is not an activation or output point")
        return f"{p.tensor}__q{self._index[key]}"

    def scheme(self, settings: QuantSettings | None = None) -> Scheme:
        """The scheme ``settings`` ask for on this model."""
        return build_scheme(self.graph, settings)

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        scheme: Scheme | None = None,
        *,
        calibration: Calibration | None = None,
        outputs: Sequence[str] | None = None,
        keep: bool = False,
    ) -> dict[str, np.ndarray]:
        """Outputs (model outputs unless ``outputs`` names others) under ``scheme``.

        ``scheme=None`` runs the float model; ``calibration`` defaults to the simulator's.
        ``keep`` keeps the run's crossing tensors for later runs sharing its prefix (float
        runs always keep theirs).
        """
        names = list(outputs) if outputs is not None else list(self.outputs)
        missing = [n for n in names if n not in self.available]
        if missing:
            raise KeyError(f"tensors not exposed by the simulator: {', '.join(missing[:5])}")
        feeds, sigs = self._feeds_for(scheme, calibration)
        if set(names) <= self._lean_outputs:
            outs = self._run_lean([inputs], feeds, sigs, keep=keep or _is_float(scheme))
            self.forward_passes += 1
            return {n: outs[n] for n in names}
        if self._ensure_plan(inputs) is not None:  # a segment at a time: no whole-graph peak
            got: dict[str, np.ndarray] = {}
            for part in self.run_exposed(inputs, names, scheme, calibration=calibration):
                got.update(part)
            return {n: got[n] for n in names}
        feeds = dict(feeds)
        for name in self.inputs:
            feeds[name] = np.asarray(inputs[name])
        values = self.session.run(names, feeds)
        self.forward_passes += 1
        return dict(zip(names, values, strict=True))

    def run_batch(
        self,
        samples: Sequence[Mapping[str, np.ndarray]],
        scheme: Scheme | None = None,
        *,
        calibration: Calibration | None = None,
        keep: bool = False,
    ) -> list[dict[str, np.ndarray]]:
        """Model outputs of each sample under ``scheme``, up to ``BATCH`` samples per run
        stacked along axis 0 when the model allows it (checked once against single runs);
        one run per sample otherwise. Counts one pass per sample."""
        if self.batchable is None and len(samples) >= 2:
            self.batchable = self._check_batching(samples[:2], scheme, calibration)
        if not self.batchable or len(samples) < 2:
            return [self.run(s, scheme, calibration=calibration, keep=keep) for s in samples]
        out: list[dict[str, np.ndarray]] = []
        feeds, sigs = self._feeds_for(scheme, calibration)
        names = list(self.outputs)
        for start in range(0, len(samples), self.batch_size):
            chunk = samples[start : start + self.batch_size]
            values = self._run_lean(chunk, feeds, sigs, keep=keep or _is_float(scheme))
            self.forward_passes += len(chunk)
            sizes = np.cumsum([np.asarray(s[self.inputs[0]]).shape[0] for s in chunk])[:-1]
            parts = [np.split(values[n], sizes, axis=0) for n in names]
            out += [{n: parts[k][j] for k, n in enumerate(names)} for j in range(len(chunk))]
        return out

    def _check_batching(
        self,
        two: Sequence[Mapping[str, np.ndarray]],
        scheme: Scheme | None,
        calibration: Calibration | None,
    ) -> bool:
        """Whether a stacked run gives the single runs' outputs (a Reshape with a fixed batch
        of 1, or a batch-mixing op, makes it fail or differ)."""
        per_sample = sum(np.asarray(two[0][n]).nbytes for n in self.inputs)
        self.batch_size = max(1, min(BATCH, BATCH_BYTES // max(1, per_sample)))
        if self.batch_size < 2:
            self.batch_note = (
                f"one sample is {per_sample / 2**20:.1f} MiB of input: stacking would not "
                f"keep a run under {BATCH_BYTES >> 20} MiB of input"
            )
            return False
        singles = [self.run(s, scheme, calibration=calibration) for s in two]
        feeds, sigs = self._feeds_for(scheme, calibration)
        for name in self.inputs:
            a, b = (np.asarray(s[name]) for s in two)
            if a.ndim == 0 or a.shape[0] != 1 or a.shape != b.shape:
                self.batch_note = f"input {name} has shape {a.shape}, not a batch of 1"
                return False
        try:
            got = self._run_lean(two, feeds, sigs, keep=False, fresh=True)
            stacked = [got[n] for n in self.outputs]
        except Exception as exc:  # onnxruntime's errors have no common base class
            self.batch_note = "a batch of 2 fails: " + str(exc).splitlines()[0][:200]
            self.batch_note += _batch_blockers(self.graph)
            log.info("batched runs unavailable: %s", self.batch_note)
            return False
        for k, name in enumerate(self.outputs):
            v = stacked[k]
            if v.ndim == 0 or v.shape[0] != 2:
                self.batch_note = f"output {name} of a batch of 2 has shape {v.shape}"
                self.batch_note += _batch_blockers(self.graph)
                return False
            for j in range(2):
                ref = singles[j][name]
                if v[j : j + 1].shape != ref.shape or not np.allclose(
                    v[j : j + 1], ref, rtol=1e-4, atol=1e-5, equal_nan=True
                ):
                    self.batch_note = (
                        f"output {name} of a batch of 2 differs from single runs "
                        "(an op mixes the batch)" + _batch_blockers(self.graph)
                    )
                    return False
        return True

    def run_float(
        self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        return self.run(inputs, None, outputs=outputs)

    def reference(
        self,
        inputs: Mapping[str, np.ndarray],
        *,
        key: Hashable | None = None,
        known: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:
        """Float model outputs of one sample, computed once and cached (by ``key`` or content);
        ``known``: the outputs already computed (the observation pass's), kept as they are,
        except on a segmented graph: there the float run leaves the prefixes every what-if of
        this sample starts from (without them each ran the whole graph: PP-OCRv4 det's
        sensitivity cost a whole pass a node and sample)."""
        k = key if key is not None else sample_digest(inputs)
        hit = self._refs.get(k)
        if hit is not None:
            self._refs.move_to_end(k)
            return hit
        segmented = self.plan is not None and self.segmented
        values = dict(known) if known is not None and not segmented else self.run_float(inputs)
        self._refs[k] = values
        if len(self._refs) > _REF_CACHE:
            self._refs.popitem(last=False)
        return values

    # ------------------------------------------------------------------ segments
    @property
    def session(self) -> object:
        """The whole graph exposing every tensor (unsegmented runs only; built when needed)."""
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(
                self.fq_model.SerializeToString(), self._opts, providers=["CPUExecutionProvider"]
            )
        return self._session

    @property
    def lean_session(self) -> object:
        """The whole graph exposing only the model outputs (built when first needed).

        A tensor that is a graph output is allocated afresh on every run and never shares
        memory, which costs a MobileNetV2 about 40 % of a pass: what-ifs measured at the model
        outputs run here, or in the segment sessions cut from it."""
        if self._lean is None:
            import onnxruntime as ort

            lean = onnx.ModelProto()
            lean.CopyFrom(self.fq_model)
            del lean.graph.output[len(self.graph.outputs) :]
            _dynamic_batch(lean, self.graph.inputs)
            self._lean = ort.InferenceSession(
                lean.SerializeToString(), self._opts, providers=["CPUExecutionProvider"]
            )
        return self._lean

    def _ensure_plan(self, sample: Mapping[str, np.ndarray]) -> Plan | None:
        """Cut the graph (once, with the first sample's shapes); None when not segmented."""
        if self.segmented is None:  # auto: only where samples run one at a time
            per_sample = sum(np.asarray(sample[n])[:1].nbytes for n in self.inputs)
            self.segmented = BATCH_BYTES // max(1, per_sample) < SEGMENT_BELOW_BATCH
        if not self.segmented:
            return None
        if self.plan is None:
            import onnxruntime as ort

            shapes = {n: (1, *np.asarray(sample[n]).shape[1:]) for n in self.inputs}
            sizes = tensor_sizes(self.graph.model, shapes)
            self.plan = plan(self.fq_model, self.inputs, self.outputs, sizes)
            if len(self.plan.segments) < 2:
                self.segmented = False
                return None
            types = self._elem_types()
            self._seg_sessions = [
                ort.InferenceSession(
                    segment_model(self.fq_model, seg, types).SerializeToString(),
                    self._opts,
                    providers=["CPUExecutionProvider"],
                )
                for seg in self.plan.segments
            ]
            segs = self.plan.segments
            outs = set(self.outputs)
            self._carry = [
                frozenset(
                    t
                    for s in segs[:j]
                    for t in s.outputs
                    if t in outs or any(t in later.inputs for later in segs[j:])
                )
                for j in range(len(segs))
            ]
            log.info(
                "graph cut in %d segments at %s (crossing MiB a sample: %s)",
                len(segs),
                [s.start for s in segs[1:]],
                [round(b / 2**20, 2) for b in self.plan.cut_bytes],
            )
        return self.plan

    def _elem_types(self) -> dict[str, int]:
        return dict(self.graph.elem_types)

    def prefix_fits(self, n_samples: int) -> bool:
        """Whether ``n_samples`` samples' float crossing tensors fit the prefix cache's cap."""
        return self.plan is None or self.plan.prefix_bytes * n_samples <= self.prefixes.cap

    def _sample_key(self, sample: Mapping[str, np.ndarray]) -> str:
        first = np.asarray(sample[self.inputs[0]])
        hit = self._sample_keys.get(id(first))
        if hit is not None and hit[0]() is first:
            return hit[1]
        key = sample_digest({n: sample[n] for n in self.inputs})
        # a weak reference: the key is the array's while it lives, and holding the arrays
        # themselves would keep 256 samples (1.2 GB at 640x640) alive
        self._sample_keys[id(first)] = (weakref.ref(first), key)
        while len(self._sample_keys) > _SAMPLE_KEYS:
            self._sample_keys.popitem(last=False)
        return key

    def _prefix_states(self, sigs: Mapping[str, bytes]) -> list[bytes]:
        """Digest of every feed read before cut j, for j = 0 .. segments - 1."""
        assert self.plan is not None
        h = hashlib.blake2b(digest_size=16)
        states = []
        for seg in self.plan.segments:
            states.append(h.copy().digest())
            for f in seg.feeds:
                if f in sigs:
                    h.update(f.encode() + sigs[f])
        return states

    def _run_lean(
        self,
        samples: Sequence[Mapping[str, np.ndarray]],
        feeds: Mapping[str, np.ndarray],
        sigs: Mapping[str, bytes],
        *,
        keep: bool,
        fresh: bool = False,
    ) -> dict[str, np.ndarray]:
        """Model outputs of ``samples`` stacked along axis 0, run from the latest cut whose
        crossing values these feeds' prefix left in the cache (the whole graph if none)."""
        stacked = {
            n: (
                np.asarray(samples[0][n])
                if len(samples) == 1
                else np.concatenate([np.asarray(s[n]) for s in samples], axis=0)
            )
            for n in self.inputs
        }
        names = list(self.outputs)
        plan_ = self._ensure_plan(samples[0])
        if plan_ is None:
            all_feeds = dict(feeds)
            all_feeds.update(stacked)
            return dict(zip(names, self.lean_session.run(names, all_feeds), strict=True))
        segs = plan_.segments
        states = self._prefix_states(sigs)
        keys = [self._sample_key(s) for s in samples]
        start = 0
        cached: list[dict[str, np.ndarray]] = []
        if not fresh:
            for j in range(len(segs) - 1, 0, -1):
                if all((k, j, states[j]) in self.prefixes for k in keys):
                    got = [self.prefixes.get((k, j, states[j])) for k in keys]
                    cached = [g for g in got if g is not None]
                    start = j
                    break
        values: dict[str, np.ndarray] = {}
        if start:
            for t in self._carry[start]:
                parts = [c[t] for c in cached]
                values[t] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        sizes = np.cumsum([np.asarray(s[self.inputs[0]]).shape[0] for s in samples])[:-1]
        for j in range(start, len(segs)):
            seg = segs[j]
            if j > start and keep:
                self._keep(keys, j, states[j], values, sizes)
            run_feeds = {f: (stacked[f] if f in stacked else feeds[f]) for f in seg.feeds}
            for t in seg.inputs:
                run_feeds[t] = values[t]
            got = self._seg_sessions[j].run(list(seg.outputs), run_feeds)
            values.update(zip(seg.outputs, got, strict=True))
            self.segment_runs += 1
        self.skipped_segments += start
        return {n: values[n] for n in names}

    def _keep(
        self,
        keys: Sequence[str],
        j: int,
        state: bytes,
        values: Mapping[str, np.ndarray],
        sizes: np.ndarray,
    ) -> None:
        """Cache the crossing values at cut ``j`` of each sample of a stacked run."""
        carry = self._carry[j]
        if len(keys) == 1:
            self.prefixes.put((keys[0], j, state), {t: values[t] for t in carry})
            return
        split = {t: np.split(values[t], sizes, axis=0) for t in carry}
        for b, k in enumerate(keys):
            self.prefixes.put((k, j, state), {t: split[t][b].copy() for t in carry})

    def observe_float(
        self, sample: Mapping[str, np.ndarray], tensors: Sequence[str]
    ) -> Iterator[dict[str, np.ndarray]]:
        """The float values of ``tensors`` for one sample, a segment at a time."""
        return self.run_exposed(sample, tensors)

    def run_exposed(
        self,
        sample: Mapping[str, np.ndarray],
        tensors: Sequence[str],
        scheme: Scheme | None = None,
        *,
        calibration: Calibration | None = None,
    ) -> Iterator[dict[str, np.ndarray]]:
        """The values of ``tensors`` (any the simulator exposes) for one sample under
        ``scheme``, a segment at a time: the values of one segment are dropped before the
        next runs, so the peak is one segment's tensors, not the whole graph's. One pass."""
        wanted = list(dict.fromkeys(tensors))
        missing = [n for n in wanted if n not in self.available and n not in self.inputs]
        if missing:
            raise KeyError(f"tensors not exposed by the simulator: {', '.join(missing[:5])}")
        plan_ = self._ensure_plan(sample)
        if plan_ is None:
            yield self.run(sample, scheme, calibration=calibration, outputs=wanted)
            return
        given = {t: np.asarray(sample[t]) for t in wanted if t in self.inputs}
        if given:
            yield given
        feeds, _ = self._feeds_for(scheme, calibration)
        want = set(wanted)
        carried: dict[str, np.ndarray] = {}
        for j in range(len(plan_.segments)):
            got, carried = self._exposing_step(j, sample, carried, want, feeds)
            yield got
            del got
        self.forward_passes += 1

    def exposed_steps(self, sample: Mapping[str, np.ndarray]) -> list[frozenset[str]]:
        """The tensors each step of ``run_step`` produces, in order: one step per segment on a
        cut graph, one step producing every exposed tensor otherwise."""
        plan_ = self._ensure_plan(sample)
        if plan_ is None:
            return [self.available]
        return [seg.produced for seg in plan_.segments]

    def run_step(
        self,
        j: int,
        sample: Mapping[str, np.ndarray],
        carried: Mapping[str, np.ndarray],
        tensors: Sequence[str],
        scheme: Scheme | None = None,
        *,
        calibration: Calibration | None = None,
        new_pass: bool = True,
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Step ``j`` of ``exposed_steps`` alone for one sample under ``scheme``: the values of
        ``tensors`` it produces and what it hands on to step j+1, from ``carried`` (what step
        j-1 handed on, under any feeds that agree with these before step j). A run restarting
        there skips the steps before. Counts a pass when ``new_pass``."""
        plan_ = self._ensure_plan(sample)
        if plan_ is None:
            return self.run(sample, scheme, calibration=calibration, outputs=tensors), {}
        feeds, _ = self._feeds_for(scheme, calibration)
        got, out = self._exposing_step(j, sample, carried, set(tensors), feeds)
        self.segment_runs += 1
        self.forward_passes += int(new_pass)
        return got, out

    def first_changed_step(
        self, scheme: Scheme | None, before: Calibration | None, after: Calibration | None
    ) -> int | None:
        """The first step of ``exposed_steps`` reading a feed that differs between the two
        calibrations under ``scheme``; None when no feed differs (the runs are the same)."""
        a, b = self._feeds_for(scheme, before)[1], self._feeds_for(scheme, after)[1]
        changed = [f for f, sig in b.items() if a.get(f) != sig]
        if not changed:
            return None
        if self.plan is None or not self.segmented:
            return 0
        return min(self.plan.first_reader(f) for f in changed)

    def _exposing_step(
        self,
        j: int,
        sample: Mapping[str, np.ndarray],
        carried: Mapping[str, np.ndarray],
        want: set[str],
        feeds: Mapping[str, np.ndarray],
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Segment ``j`` in its exposing session: the wanted tensors it produces and what it
        hands on (the crossing tensors later segments read)."""
        assert self.plan is not None
        seg = self.plan.segments[j]
        sess = self._exposing_sessions(self.plan)[j]
        names = list(dict.fromkeys([*seg.outputs, *(t for t in seg.produced if t in want)]))
        run_feeds = {
            f: (np.asarray(sample[f]) if f in self.inputs else feeds[f]) for f in seg.feeds
        }
        for t in seg.inputs:
            run_feeds[t] = carried[t]
        got = dict(zip(names, sess.run(names, run_feeds), strict=True))
        values = {**carried, **{t: got[t] for t in seg.outputs}}
        if j + 1 < len(self._carry):  # keep only what later segments read
            values = {t: v for t, v in values.items() if t in self._carry[j + 1]}
        return {t: got[t] for t in names if t in want}, values

    def _exposing_sessions(self, plan_: Plan) -> list[object]:
        """One session per segment exposing every tensor the simulator exposes (built once)."""
        if not self._observers:
            import onnxruntime as ort

            types = self._elem_types()
            opts = session_options()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            if self._opts.intra_op_num_threads:
                opts.intra_op_num_threads = self._opts.intra_op_num_threads
            # no arena: each segment's exposed tensors are handed out and dropped, and one
            # arena per segment would keep that segment's peak for the whole run
            opts.enable_cpu_mem_arena = False
            exposed = sorted(self.available)
            self._observers = [
                ort.InferenceSession(
                    segment_model(self.fq_model, seg, types, exposed).SerializeToString(),
                    opts,
                    providers=["CPUExecutionProvider"],
                )
                for seg in plan_.segments
            ]
        return self._observers

    # ------------------------------------------------------------------ feeds
    def _feeds_for(
        self, scheme: Scheme | None, calibration: Calibration | None
    ) -> tuple[dict[str, np.ndarray], dict[str, bytes]]:
        """The feeds of ``scheme`` and a digest of each (prefix states are keyed by them)."""
        if scheme is None:
            return self._float_feeds, self._float_sigs
        cal = calibration if calibration is not None else self.calibration
        if cal is None and scheme.active():
            raise ValueError("a quantized scheme needs a calibration")
        key = (id(cal), scheme.key())
        hit = self._feeds.get(key)
        if hit is not None and hit[0] is cal:
            self._feeds.move_to_end(key)
            return hit[1], hit[2]
        feeds, sigs = self._make_feeds(scheme, cal)
        self._feeds[key] = (cal, feeds, sigs)
        if len(self._feeds) > _FEED_CACHE:
            self._feeds.popitem(last=False)
        return feeds, sigs

    def _make_feeds(
        self, scheme: Scheme | None, cal: Calibration | None
    ) -> tuple[dict[str, np.ndarray], dict[str, bytes]]:
        feeds: dict[str, np.ndarray] = {}
        sigs: dict[str, bytes] = {}
        act_scale: dict[str, float] = {}
        wide_in: set[str] = set()  # activation points rounded at int16
        w_scale: dict[str, np.ndarray] = {}
        reduce = bool(cal is not None and cal.reduce_range_weights)
        for i, p in enumerate(self.points):
            dtype = scheme.dtype(p.key) if scheme is not None else "float"
            on = dtype != "float"
            if p.kind in ("activation", "output"):
                # a point calibration never saw (no sample reached it) cannot be rounded
                on = on and cal is not None and p.key in cal.activations
                s, zp = 1.0, 0
                if on and cal is not None:
                    r = cal.activations[p.key]
                    if dtype == "int16":  # no clipping at 16 bits: the full observed range
                        r = cal.wide.get(p.key, r)
                    qp = activation_qparams(r, dtype)
                    s, zp = qp.scale, qp.zero_point
                    act_scale[p.key] = s
                    if dtype == "int16":
                        wide_in.add(p.key)
                elif cal is not None and p.key in cal.activations:
                    act_scale[p.key] = activation_qparams(cal.activations[p.key], "int8").scale
                wide = dtype == "int16"
                feeds[f"__q{i}_on"] = np.array(on)
                feeds[f"__q{i}_wide"] = np.array(wide)
                feeds[f"__q{i}_s"] = np.array(s, np.float32)
                feeds[f"__q{i}_zp8"] = np.array(0 if wide else zp, np.int8)
                feeds[f"__q{i}_zp16"] = np.array(zp if wide else 0, np.int16)
            elif p.kind == "weight":
                w = self._float_weight(p.tensor)
                if cal is not None and p.key in cal.weights:
                    w_scale[p.key] = weight_scales(cal.weights[p.key], "int8", reduce)
                on = on and p.key in w_scale
                name = f"__q{i}_w"
                if on:
                    feeds[name], sigs[name] = self._rounded_weight(p, cal, reduce)
                else:
                    feeds[name], sigs[name] = w, self._float_digest(p.tensor)
        # biases last: they round to s_in * s_w of the owner node, in int32 (no saturation)
        for i, p in enumerate(self.points):
            if p.kind != "bias":
                continue
            node = self.graph.nodes[p.nodes[0]]
            b = self._float_weight(p.tensor)
            delta = None if cal is None else cal.bias_deltas.get(p.key)
            if delta is not None:
                b = (b + delta.astype(np.float32)).astype(np.float32)
            on = scheme is not None and scheme.dtype(p.key) != "float"
            s_in = act_scale.get(node.act_points[0]) if node.act_points else None
            s_w = w_scale.get(node.weight_point) if node.weight_point is not None else None
            if on and s_in is not None and s_w is not None:
                wide = bool(node.act_points) and node.act_points[0] in wide_in
                b = round_bias(b, np.float32(s_in) * s_w, wide)
            feeds[f"__q{i}_b"] = b
        for name, v in feeds.items():
            if name not in sigs:
                sigs[name] = self._scalar_digest(v) if v.ndim == 0 else feed_digest(v)
        return feeds, sigs

    def _scalar_digest(self, v: np.ndarray) -> bytes:
        """``feed_digest`` of a 0-d feed (a switch, scale or zero point), remembered by value:
        a what-if's feeds are mostly the same few thousand scalars, hashed again per scheme."""
        key = (v.dtype.str, v.tobytes())
        d = self._scalar_sigs.get(key)
        if d is None:
            if len(self._scalar_sigs) >= _SCALAR_SIGS:
                self._scalar_sigs.clear()
            d = self._scalar_sigs[key] = feed_digest(v)
        return d

    def _float_weight(self, name: str) -> np.ndarray:
        w = self._float_weights.get(name)
        if w is None:
            w = np.ascontiguousarray(self.graph.initializers[name], dtype=np.float32)
            self._float_weights[name] = w
        return w

    def _float_digest(self, name: str) -> bytes:
        d = self._float_digests.get(name)
        if d is None:
            d = self._float_digests[name] = feed_digest(self._float_weight(name))
        return d

    def _rounded_weight(self, p: Point, cal: Calibration, reduce: bool) -> tuple[np.ndarray, bytes]:
        """The weight rounded to its int8 grid and its digest, once per calibration's weight
        thresholds (kept for a few): calibrations made by ``replace`` share them, so the bias
        correction's trials do not round every weight again."""
        key = (id(cal.weights), p.key, reduce)
        hit = self._wcache.get(key)
        if hit is not None and hit[0] is cal.weights:
            self._wcache.move_to_end(key)
            return hit[1], hit[2]
        s = weight_scales(cal.weights[p.key], "int8", reduce)
        shape = [1] * self.graph.initializers[p.tensor].ndim
        shape[p.axis] = p.channels
        q = weight_qmax("int8", reduce)
        w = self._float_weight(p.tensor)
        rounded = (np.clip(np.round(w / s.reshape(shape)), -q, q) * s.reshape(shape)).astype(
            np.float32
        )
        digest = feed_digest(rounded)
        self._wcache[key] = (cal.weights, rounded, digest)
        while len(self._wcache) > _WEIGHT_CACHE * max(1, self._n_weights):
            self._wcache.popitem(last=False)
        return rounded, digest


def _is_float(scheme: Scheme | None) -> bool:
    return scheme is None or not scheme.active()


def round_bias(b: np.ndarray, scale: np.ndarray, wide_input: bool) -> np.ndarray:
    """A bias rounded to int32 at ``scale`` (``s_in * s_w``). At int8 input it saturates like
    the register. At int16 input ``s_in`` is 256 times finer and a large bias can overflow
    int32 at ``s_in * s_w``: the scale then grows, per channel, to the finest that holds the
    bias (as onnxruntime's quantizer widens the scale of an int32 bias that would not fit),
    so more activation bits never cost the bias its value."""
    bs = np.maximum(np.asarray(scale, np.float32), np.float32(1e-30)).astype(np.float64)
    b64 = np.asarray(b, np.float64)
    if wide_input:
        bs = np.maximum(bs, np.abs(b64) / (2.0**31 - 1))
    q = np.clip(np.round(b64 / bs), -(2.0**31), 2.0**31 - 1)
    return (q * bs).astype(np.float32)


def sample_digest(inputs: Mapping[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(inputs):
        a = np.ascontiguousarray(inputs[name])
        h.update(name.encode())
        h.update(str(a.shape).encode() + a.dtype.str.encode())
        h.update(a.data)
    return h.hexdigest()


def build_fakequant_model(graph: QuantGraph) -> onnx.ModelProto:
    """The float model with one switchable fake-quant chain per point (see module docstring)."""
    src = graph.model
    g = src.graph
    new_inputs: list[onnx.ValueInfoProto] = []
    before: list[onnx.NodeProto] = []  # chains on graph inputs, weights and biases
    after: dict[str, list[onnx.NodeProto]] = {}  # producer tensor -> chains to emit after it
    consumer_rename: dict[str, str] = {}  # activation tensor -> its fake-quant output
    producer_rename: dict[str, str] = {}  # output-point tensor -> the producer's raw name
    node_input_rename: dict[tuple[str, int], str] = {}  # (node, input position) -> new name
    f32, boolean = TensorProto.FLOAT, TensorProto.BOOL

    def branch(name: str, nodes: list[onnx.NodeProto], out: str) -> onnx.GraphProto:
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, f32, None)])

    def qdq(p: str, x: str, s: str, zp: str, domain: str, **axis: int) -> list[onnx.NodeProto]:
        return [
            helper.make_node(
                "QuantizeLinear", [x, s, zp], [f"{p}_q"], name=f"{p}/Q", domain=domain, **axis
            ),
            helper.make_node(
                "DequantizeLinear",
                [f"{p}_q", s, zp],
                [f"{p}_dq"],
                name=f"{p}/DQ",
                domain=domain,
                **axis,
            ),
        ]

    def chain(i: int, x: str, y: str) -> list[onnx.NodeProto]:
        """Activation or output point: gated int8 / int16 Q/DQ."""
        on, wide, s = f"__q{i}_on", f"__q{i}_wide", f"__q{i}_s"
        zp8, zp16 = f"__q{i}_zp8", f"__q{i}_zp16"
        new_inputs.append(helper.make_tensor_value_info(on, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(wide, boolean, []))
        new_inputs.append(helper.make_tensor_value_info(s, f32, []))
        new_inputs.append(helper.make_tensor_value_info(zp8, TensorProto.INT8, []))
        new_inputs.append(helper.make_tensor_value_info(zp16, TensorProto.INT16, []))
        p = f"__q{i}"
        g8 = branch(f"{p}_int8", qdq(f"{p}_8", x, s, zp8, MS_DOMAIN), f"{p}_8_dq")
        g16 = branch(f"{p}_int16", qdq(f"{p}_16", x, s, zp16, MS_DOMAIN), f"{p}_16_dq")
        pick = helper.make_node(
            "If", [wide], [f"{p}_fq"], name=f"{p}/IfWide", then_branch=g16, else_branch=g8
        )
        quant = branch(f"{p}_on", [pick], f"{p}_fq")
        flt = branch(
            f"{p}_off", [helper.make_node("Identity", [x], [f"{p}_id"], name=f"{p}/Id")], f"{p}_id"
        )
        return [
            helper.make_node("If", [on], [y], name=f"{p}/If", then_branch=quant, else_branch=flt)
        ]

    for i, p in enumerate(graph.points.values()):
        if p.kind == "output":
            raw = f"{p.tensor}__raw{i}"
            producer_rename[p.tensor] = raw
            after.setdefault(p.tensor, []).extend(chain(i, raw, p.tensor))
    for i, p in enumerate(graph.points.values()):
        if p.kind == "activation":
            y = f"{p.tensor}__q{i}"
            consumer_rename[p.tensor] = y
            nodes = chain(i, p.tensor, y)
            if p.tensor in graph.producer:
                after.setdefault(p.tensor, []).extend(nodes)
            else:
                before.extend(nodes)
        elif p.kind == "weight":
            shape = list(graph.initializers[p.tensor].shape)
            name = f"__q{i}_w"
            new_inputs.append(helper.make_tensor_value_info(name, f32, shape))
            node_input_rename[(p.nodes[0], 1)] = name
        elif p.kind == "bias":
            name = f"__q{i}_b"
            new_inputs.append(helper.make_tensor_value_info(name, f32, [p.channels]))
            node_input_rename[(p.nodes[0], 2)] = name

    nodes: list[onnx.NodeProto] = list(before)
    for node in g.node:
        n = onnx.NodeProto()
        n.CopyFrom(node)
        for pos, t in enumerate(n.input):
            renamed = node_input_rename.get((n.name, pos))
            if renamed is not None:
                n.input[pos] = renamed
            elif t in consumer_rename:
                n.input[pos] = consumer_rename[t]
        for pos, t in enumerate(n.output):
            if t in producer_rename:
                n.output[pos] = producer_rename[t]
        nodes.append(n)
        for t in node.output:
            nodes.extend(after.get(t, ()))

    exposed = list(
        dict.fromkeys(
            [
                *graph.outputs,
                *(p.tensor for p in graph.points.values() if p.kind in ("activation", "output")),
                *graph.point_node_outputs(),
                *consumer_rename.values(),
            ]
        )
    )
    outputs = [o for o in g.output]
    have = {o.name for o in outputs}
    for t in exposed:
        if t not in have and t not in graph.initializers:
            outputs.append(
                helper.make_tensor_value_info(t, graph.elem_types.get(t, TensorProto.FLOAT), None)
            )
    still_read = _names_read(nodes)  # weights and biases of weighted nodes are inputs now
    new_graph = helper.make_graph(
        nodes,
        g.name or "fakequant",
        [*g.input, *new_inputs],
        outputs,
        initializer=[t for t in g.initializer if t.name in still_read],
    )
    opsets = [o for o in src.opset_import if o.domain != MS_DOMAIN]
    opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
    model = helper.make_model(new_graph, opset_imports=opsets)
    model.ir_version = src.ir_version
    return model


def _names_read(nodes: Sequence[onnx.NodeProto]) -> set[str]:
    """Every tensor name the nodes read, subgraphs (If, Loop, Scan bodies) included."""
    names: set[str] = set()
    for n in nodes:
        names.update(n.input)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names |= _names_read(a.g.node)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    names |= _names_read(g.node)
    return names


def _batch_blockers(graph: QuantGraph) -> str:
    """'; Reshape nodes with a fixed batch: a, b' when the graph has any (else '')."""
    fixed = [
        n.name
        for n in graph.model.graph.node
        if n.op_type == "Reshape"
        and len(n.input) > 1
        and n.input[1] in graph.initializers
        and np.asarray(graph.initializers[n.input[1]]).size > 0
        and int(np.asarray(graph.initializers[n.input[1]]).reshape(-1)[0]) > 0
    ]
    if not fixed:
        return ""
    more = " ..." if len(fixed) > 3 else ""
    return f"; Reshape with a fixed batch size: {', '.join(fixed[:3])}{more}"


def _dynamic_batch(model: onnx.ModelProto, inputs: Sequence[str]) -> None:
    """Mark dimension 0 of the model's inputs and outputs symbolic, so samples can stack."""
    wanted = set(inputs)
    for vi in [*model.graph.input, *model.graph.output]:
        if vi.name not in wanted and vi not in model.graph.output:
            continue
        tt = vi.type.tensor_type
        if tt.HasField("shape") and len(tt.shape.dim) > 0:
            tt.shape.dim[0].ClearField("dim_value")
            tt.shape.dim[0].dim_param = "__batch"
    del model.graph.value_info[:]
