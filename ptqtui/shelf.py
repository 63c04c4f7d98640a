"""Samples held in memory up to a size, the rest in a private temporary file read back on use.

The agreement samples of a 640x640 detector are 4.9 MB each model-ready: the 100 a task
agreement is measured on were 490 MB held for the whole run, a third of the memory target.
A `Shelf` keeps the first samples in memory up to ``memory`` bytes and writes the others to an
unnamed temporary file (``tempfile.TemporaryFile``: removed by the system when closed, even on
a crash), from which each is read back into a fresh array when asked for; a what-if reads every
sample once, which costs far less than the pass it feeds.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, overload

import numpy as np

from ptqtui.errors import PtqInputError

SHELF_MEMORY = 64 << 20  # bytes of samples a shelf holds in memory; the rest on disk

Sample = dict[str, np.ndarray]
_Layout = tuple[tuple[str, str, tuple[int, ...], int, int], ...]  # name, dtype, shape, at, size


class _Samples(Sequence[Sample]):
    """Samples of a shelf at ``_indices``, read on use (the shelf itself, or a slice of it)."""

    _shelf: Shelf
    _indices: range

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | Sequence[Sample]:
        if isinstance(index, slice):
            return _View(self._shelf, self._indices[index])
        return self._shelf._load(self._indices[index])

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[Sample]:
        for i in self._indices:
            yield self._shelf._load(i)


class Shelf(_Samples):
    """A sequence of samples (name -> array) that spills beyond ``memory`` bytes to disk."""

    def __init__(self, memory: int = SHELF_MEMORY, directory: str | None = None) -> None:
        self.memory = memory
        self.directory = directory
        self.held = 0  # bytes in memory
        self.spilled = 0  # bytes on disk
        self._items: list[Sample | _Layout] = []
        self._file: IO[bytes] | None = None

    @property
    def _shelf(self) -> Shelf:  # type: ignore[override]
        return self

    @property
    def _indices(self) -> range:  # type: ignore[override]
        return range(len(self._items))

    def append(self, sample: Mapping[str, np.ndarray]) -> None:
        arrays = {k: np.ascontiguousarray(v) for k, v in sample.items()}
        size = sum(a.nbytes for a in arrays.values())
        if self.held + size <= self.memory:
            self._items.append(arrays)
            self.held += size
            return
        layout = []
        try:
            if self._file is None:
                # held open for the shelf's life (it is the storage), closed by close()
                self._file = tempfile.TemporaryFile(prefix="ptqtui-shelf-", dir=self.directory)  # noqa: SIM115
            fd = self._file.fileno()
            for name, a in arrays.items():
                at = self.spilled
                if a.nbytes:
                    os.pwrite(fd, memoryview(a).cast("B"), at)
                layout.append((name, a.dtype.str, a.shape, at, a.nbytes))
                self.spilled += a.nbytes
        except OSError as exc:  # a full or read-only temporary directory: the user's to fix
            where = self.directory or tempfile.gettempdir()
            raise PtqInputError(
                where,
                f"cannot hold the samples beyond {self.memory >> 20} MiB here ({exc.strerror}); "
                "free space or set TMPDIR",
            ) from exc
        self._items.append(tuple(layout))

    def _load(self, i: int) -> Sample:
        item = self._items[i]
        if isinstance(item, dict):
            return item
        assert self._file is not None
        fd = self._file.fileno()
        out = {}
        for name, dtype, shape, at, size in item:
            a = np.empty(shape, np.dtype(dtype))
            if size and os.preadv(fd, [memoryview(a).cast("B")], at) != size:
                raise OSError(f"short read from the sample shelf at {at}")
            out[name] = a
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:  # the file is unnamed: closing it frees the disk space
        self.close()


class _View(_Samples):
    """A slice of a shelf, read on use as the shelf is."""

    def __init__(self, shelf: Shelf, indices: range) -> None:
        self._shelf = shelf
        self._indices = indices
