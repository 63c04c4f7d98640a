"""search_mix and correct_bias as they were before issue 17 (every trial a whole pass): the
slow reference the restarting versions must agree with (tests and benchmarks/bench_calib_search)."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.progress import ProgressCallback, check_cancel, report
from ptqtui.quant.calibrate import (
    DEFAULT_PERCENTILE,
    MIX_PICK_THRESHOLD,
    Calibration,
    _channel_mean,
    _rank_key,
    calibrate_simple,
    log,
    output_cosine,
)
from ptqtui.quant.observe import Observation, Sample
from ptqtui.quant.scheme import Scheme

if TYPE_CHECKING:
    from ptqtui.quant.simulate import Simulator


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
    sens: dict[str, float] = {}
    for n, key in enumerate(act_keys):
        check_cancel(cancel)
        sens[key] = output_cosine(sim, samples, scheme.only([key]), best)
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
        results = [(sens[key], order[0], best)]
        for k in order[1:]:
            results.append((output_cosine(sim, samples, scheme.only([key]), cands[k]), k, cands[k]))
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
    """Bias correction of reference §4, node by node in topological order."""
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
    refs = [sim.run_float(s, outputs=names) for s in samples]
    deltas: dict[str, np.ndarray] = dict(cal.bias_deltas)
    current = cal
    outs = [sim.run(s, scheme, calibration=current, outputs=names) for s in samples]
    for k, node in enumerate(nodes):
        check_cancel(cancel)
        name = names[k]
        err_before = float(
            np.mean([np.mean((r[name] - o[name]) ** 2) for r, o in zip(refs, outs, strict=True)])
        )
        diff = np.stack([_channel_mean(r[name] - o[name]) for r, o in zip(refs, outs, strict=True)])
        key = node.bias_point
        assert key is not None
        trial_deltas = {**deltas, key: deltas.get(key, 0.0) + diff.mean(axis=0).astype(np.float32)}
        trial = current.replace(bias_deltas=trial_deltas)
        trial_outs = [sim.run(s, scheme, calibration=trial, outputs=names) for s in samples]
        err_after = float(
            np.mean(
                [np.mean((r[name] - o[name]) ** 2) for r, o in zip(refs, trial_outs, strict=True)]
            )
        )
        if err_after < err_before:
            deltas, current, outs = trial_deltas, trial, trial_outs
            lines.append(
                f"Bias_Correction_Info {node.name}: mse {err_before:.6g} -> {err_after:.6g}"
            )
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
