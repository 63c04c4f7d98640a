"""Cache of what a run measured, keyed by hashes of the model, the model-ready data and the
settings that matter, so that a run after a config change measures only what changed.

- The calibration observation (one float run per calibration sample, every activation
  exposed) is the same whatever the config's calibration method, thresholds or flags. Key:
  SHA-256 of the model as serialized, of every model-ready sample in order and of the number
  kept. One ``.npz`` (no pickle).
- Measurements (`Store`): each what-if's `Measurement` (the method sweep's rows, the plan's
  and the TUI's what-ifs) and each analysis stage's records (node table, sensitivity, curve),
  as JSON checked against their types when read back. Key: the context's digest (the
  observation key, the evaluation set, the task, the sample counts) with the settings or the
  configured scheme they were measured under.

Every entry is written atomically; an unreadable or stale entry is ignored and rewritten. The
directory is kept under a size limit (least recently used entries go first); only files this
module wrote (``observation-*``, ``measure-*``, ``stage-*``) are ever deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ptqtui.jsoncodec import decode, encode
from ptqtui.progress import ProgressCallback
from ptqtui.quant.observe import Observation, Sample, TensorStats, observe
from ptqtui.shelf import Shelf

if TYPE_CHECKING:
    from ptqtui.quant.simulate import Simulator

T = TypeVar("T")

FORMAT = 1  # bump when the stored layout or TensorStats changes
MEASURE_FORMAT = 1  # bump when a Measurement or an analysis record changes its fields
DEFAULT_LIMIT_BYTES = 2 << 30  # --cache-limit: the directory is pruned back under this
ENTRY_PATTERNS = ("observation-*.npz", "measure-*.json", "stage-*.json")
_SCALARS = ("count", "min", "max", "hist_max", "zeros_pending", "nan_count")


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ptqtui, else ~/.cache/ptqtui."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ptqtui"


def observation_key(model_bytes: bytes, samples: Iterable[Sample], keep: int) -> tuple[str, Shelf]:
    """Hex digest of the model, the model-ready samples (names, dtypes, shapes, bytes) and
    ``keep``; and the first ``keep`` samples (an entry stores statistics only)."""
    h = hashlib.sha256()
    h.update(f"ptqtui-observation-{FORMAT}-{keep}".encode())
    h.update(hashlib.sha256(model_bytes).digest())
    kept = Shelf()
    for s in samples:
        if len(kept) < keep:
            kept.append(s)
        for name in sorted(s):
            a = np.ascontiguousarray(s[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.tobytes())
    return h.hexdigest(), kept


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
    _write_entry(path, lambda fh: np.savez(fh, **arrays))


def _write_entry(path: Path, write: Callable[[Any], None]) -> None:
    """Write an entry atomically (a temp file beside it, flushed, renamed over it); raises
    OSError, and leaves no temp file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_observation(path: Path, kept: Sequence[Sample]) -> Observation:
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
    limit: int = DEFAULT_LIMIT_BYTES,
) -> tuple[Observation, str | None, str | None]:
    """``observe`` over ``samples()``, read from / written to ``cache_dir`` when given; a
    note saying what came from the cache (None when nothing did); and the observation key
    (None without a cache), which the measurements' keys start from."""
    if cache_dir is None:
        obs = observe(sim, samples(), keep=keep, total=total, progress=progress, cancel=cancel)
        return obs, None, None
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
            with contextlib.suppress(OSError):
                os.utime(path)  # least recently used goes first when pruning
            return obs, f"calibration observation read from the cache ({path})", key
    obs = observe(sim, samples(), keep=keep, total=total, progress=progress, cancel=cancel)
    try:
        save_observation(path, obs)
    except OSError:
        return obs, None, key  # an unwritable cache only costs the next run its time
    prune(Path(cache_dir), limit)
    return obs, None, key


@dataclass(eq=False)
class Store:
    """JSON entries of measured values under ``root``, pruned back under ``limit`` bytes after
    each write; ``hits`` names what a run read back (the report says so)."""

    root: Path
    limit: int = DEFAULT_LIMIT_BYTES
    hits: list[str] = field(default_factory=list)

    def path(self, kind: str, key: str) -> Path:
        return self.root / f"{kind}-{key[:40]}.json"

    def get(self, kind: str, key: str, what: Any, *, label: str | None = None) -> Any | None:
        """The value stored under ``kind``/``key`` decoded as ``what``, or None (absent,
        unreadable, damaged or of another format)."""
        path = self.path(kind, key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != MEASURE_FORMAT or data.get("key") != key:
                return None
            value = decode(what, data["value"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first when pruning
        if label is not None:
            self.hits.append(label)
        return value

    def put(self, kind: str, key: str, value: Any) -> None:
        """Store ``value`` (dataclasses, tuples, numbers, text); a cache that cannot be
        written only costs the next run its time."""
        text = json.dumps(
            {"format": MEASURE_FORMAT, "key": key, "value": encode(value)}, allow_nan=False
        )
        try:
            _write_entry(self.path(kind, key), lambda fh: fh.write(text.encode("utf-8")))
        except OSError:
            return
        prune(self.root, self.limit)


def digest(*parts: object) -> str:
    """SHA-256 hex digest of ``parts`` as text (reprs of numbers, tuples, strings)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x00")
    return h.hexdigest()


def prune(root: Path, limit: int) -> int:
    """Delete this module's least recently used entries under ``root`` until they take at most
    ``limit`` bytes; returns the bytes freed. Files the cache did not write are never touched."""
    entries: list[tuple[float, int, Path]] = []
    try:
        for pattern in ENTRY_PATTERNS:
            for p in root.glob(pattern):
                st = p.stat()
                entries.append((st.st_mtime, st.st_size, p))
    except OSError:
        return 0
    total = sum(size for _, size, _ in entries)
    freed = 0
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total - freed <= limit:
            break
        try:
            p.unlink()
        except OSError:
            continue
        freed += size
    return freed
