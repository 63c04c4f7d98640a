"""The seeded choice of calibration samples the probes read, and their float-model inputs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ptqtui.check.facts.missing import MissingFact
from ptqtui.errors import PtqInputError

if TYPE_CHECKING:
    from ptqtui.inputs.data import Sample, SampleSource
    from ptqtui.inputs.preprocess import Preprocessor


def probe_indices(source: SampleSource, seed: int, limit: int) -> list[int]:
    """Up to `limit` sample positions, chosen with `seed`, in file order."""
    n = len(source)
    if n == 0:
        raise MissingFact("no readable calibration sample")
    rng = np.random.default_rng(seed)
    count = min(limit, n)
    return sorted(int(i) for i in rng.choice(n, size=count, replace=False))


def read_samples(source: SampleSource, indices: Sequence[int]) -> Iterator[Sample]:
    """The samples at `indices`; unreadable ones are left out (the loader records them)."""
    for index in indices:
        try:
            yield source.read(index)
        except PtqInputError:
            continue


def model_feeds(
    preprocessors: Sequence[Preprocessor], arrays: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The float model's inputs for samples at input_type_train: the config preprocessing."""
    return {pre.input_name: pre(arrays[pre.input_name]) for pre in preprocessors}
