"""Cache of the calibration observation, keyed by hashes of the model and the model-ready data.

The observation pass (one float run per calibration sample, every activation exposed) is the
same whatever the config's calibration method, thresholds or flags: a run after such a change
reads it back. Key: SHA-256 of the model as serialized, of every model-ready sample in order
and of the number kept. Stored as one ``.npz`` (no pickle), written atomically; an unreadable
or stale entry is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.progress import ProgressCallback
from ptqtui.quant.observe import Observation, Sample, TensorStats, observe

if TYPE_CHECKING:
    from ptqtui.quant.simulate import Simulator

FORMAT = 1  # bump when the stored layout or TensorStats changes
_SCALARS = ("count", "min", "max", "hist_max", "zeros_pending", "nan_count")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ptqtui, else ~/.cache/ptqtui."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ptqtui"


def observation_key(
    model_bytes: bytes, samples: Iterable[Sample], keep: int
) -> tuple[str, tuple[Sample, ...]]:
    """Hex digest of the model, the model-ready samples (names, dtypes, shapes, bytes) and
    ``keep``; and the first ``keep`` samples (an entry stores statistics only)."""
    h = hashlib.sha256()
    h.update(f"ptqtui-observation-{FORMAT}-{keep}".encode())
    h.update(hashlib.sha256(model_bytes).digest())
    kept: list[Sample] = []
    for s in samples:
        if len(kept) < keep:
            kept.append(s)
        for name in sorted(s):
            a = np.ascontiguousarray(s[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest(), tuple(kept)


def save_observation(path: Path, obs: Observation) -> None:
    """Write the statistics of ``obs`` to ``path`` (an .npz) atomically."""
    names = list(obs.stats)
    arrays: dict[str, np.ndarray] = {
        "names": np.array(json.dumps(names)),
        "n_samples": np.array(obs.n_samples),
    }
    for i, name in enumerate(names):
        st = obs.stats[name]
        arrays[f"s{i}"] = np.array([float(getattr(st, f)) for f in _SCALARS], np.float64)
        arrays[f"h{i}"] = st.hist
        if st.ch_min is not None and st.ch_max is not None:
            arrays[f"lo{i}"], arrays[f"hi{i}"] = st.ch_min, st.ch_max
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_observation(path: Path, kept: tuple[Sample, ...]) -> Observation:
    """Read the statistics written by ``save_observation`` (with ``kept``, the first samples
    read again); raises on anything unreadable."""
    with np.load(path, allow_pickle=False) as z:
        names = json.loads(str(z["names"]))
        stats: dict[str, TensorStats] = {}
        for i, name in enumerate(names):
            sc = z[f"s{i}"]
            st = TensorStats(
                count=int(sc[0]),
                min=float(sc[1]),
                max=float(sc[2]),
                hist=np.array(z[f"h{i}"], np.int64),
                hist_max=float(sc[3]),
                zeros_pending=int(sc[4]),
                nan_count=int(sc[5]),
            )
            if f"lo{i}" in z:
                st.ch_min, st.ch_max = np.array(z[f"lo{i}"]), np.array(z[f"hi{i}"])
            stats[name] = st
        return Observation(stats, int(z["n_samples"]), kept)


def cached_observe(
    cache_dir: Path | None,
    sim: Simulator,
    samples: Callable[[], Iterator[Sample]],
    *,
    keep: int,
    total: int | None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Observation, str | None]:
    """``observe`` over ``samples()``, read from / written to ``cache_dir`` when given; and a
    note saying what came from the cache (None when nothing did)."""
    if cache_dir is None:
        return observe(
            sim, samples(), keep=keep, total=total, progress=progress, cancel=cancel
        ), None
    key, kept = observation_key(sim.graph.model.SerializeToString(), samples(), keep)
    path = Path(cache_dir) / f"observation-{key[:32]}.npz"
    try:
        present = path.is_file()
    except OSError:  # an unreadable cache directory: run as if there were none
        present = False
    if present:
        try:
            obs = load_observation(path, kept)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            pass  # a damaged or foreign entry: observe again and overwrite it
        else:
            return obs, f"calibration observation read from the cache ({path})"
    obs = observe(sim, samples(), keep=keep, total=total, progress=progress, cancel=cancel)
    try:
        save_observation(path, obs)
    except OSError:
        return obs, None  # an unwritable cache only costs the next run its time
    return obs, None
