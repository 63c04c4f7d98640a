"""One deadline for a whole diagnosis (--time-budget): what is left, what a pass costs, whether
a measurement fits, and what did not (said "not measured (time budget)", concluding nothing)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

NOT_MEASURED = "not measured (time budget)"


class OutOfTime(Exception):
    """A measurement the time budget has no room for; `what` names it for the report."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} {NOT_MEASURED}")
        self.what = what


@dataclass(frozen=True, slots=True)
class BudgetRecord:
    """What the time budget was, what the mandatory part (calibration and the headline) was
    estimated to cost, and what did not fit."""

    seconds: float  # the --time-budget
    floor_seconds: float | None = None  # estimated cost of calibration + headline (None: unknown)
    samples: int = 0  # the headline's samples the floor was estimated for
    pass_seconds: float = 0.0  # one fake-quant pass, as timed for the floor
    not_measured: tuple[str, ...] = ()  # "model-response probe", "PTQ303's what-ifs" ...

    @property
    def below_floor(self) -> bool:
        return self.floor_seconds is not None and self.seconds < self.floor_seconds

    def floor_text(self) -> str:
        """The up-front note when the budget is below what the mandatory part needs."""
        return (
            f"--time-budget {self.seconds:g} s is below the {_seconds(self.floor_seconds)} s that "
            f"loading, calibration and the headline need on this model ({self.samples} samples at "
            f"{self.pass_seconds:.2g} s a pass): they run anyway, everything else is {NOT_MEASURED}"
        )


def _seconds(value: float | None) -> str:
    """'38' or '0.9': whole seconds, a tenth below ten."""
    v = value or 0.0
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def process_start() -> float | None:
    """The ``time.perf_counter()`` value of this process's start (Linux: /proc/self/stat),
    None where it cannot be read."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    return time.perf_counter() - age if 0.0 <= age < 3600.0 else None


@dataclass(eq=False)
class Deadline:
    """The one deadline every consumer of time checks before it starts a measurement.

    The cost of a pass is re-estimated from the passes actually timed (`timed`), so an
    estimate taken before the sessions were warm, or from one pass, does not decide alone.
    """

    budget: float
    clock: Callable[[], float] = time.perf_counter
    since: float | None = None  # a clock() value it counts from (None: now)
    started: float = field(init=False)
    floor_seconds: float | None = None
    floor_samples: int = 0
    floor_pass: float = 0.0  # the pass cost the floor was estimated with
    _passes: int = 0
    _seconds: float = 0.0
    _first_pass: float = 0.0  # one pass timed before any batch (a lower bound)
    _missed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0 < self.budget < float("inf"):
            raise ValueError("the time budget must be a positive number of seconds")
        self.started = self.clock() if self.since is None else self.since

    @property
    def at(self) -> float:
        return self.started + self.budget

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at

    def affords(self, seconds: float) -> bool:
        """Whether work of about `seconds` ends before the deadline."""
        return self.clock() + max(0.0, seconds) <= self.at

    def require(self, seconds: float, what: str) -> None:
        """Raise OutOfTime unless `seconds` of work fit (whoever catches it says what was
        left out, with `missed`)."""
        if not self.affords(seconds):
            raise OutOfTime(what)

    def missed(self, what: str) -> None:
        """Remember that `what` was not measured for lack of time."""
        if what not in self._missed:
            self._missed.append(what)

    @property
    def not_measured(self) -> tuple[str, ...]:
        return tuple(self._missed)

    # -- the cost of a pass

    def timed(self, passes: int, seconds: float) -> None:
        """Fold `passes` that took `seconds` into the estimate of a pass."""
        if passes > 0 and seconds >= 0:
            self._passes += passes
            self._seconds += seconds

    def first_pass(self, seconds: float) -> None:
        """One pass timed once the sessions exist: the estimate until batches are timed."""
        self._first_pass = max(0.0, seconds)

    @property
    def pass_seconds(self) -> float:
        """Seconds of one pass: the mean of the passes timed, never below the first one."""
        if self._passes:
            return max(self._seconds / self._passes, self._first_pass)
        return self._first_pass

    def passes_cost(self, passes: int) -> float:
        return passes * self.pass_seconds

    # -- the floor

    def set_floor(self, headline_samples: int, headline_passes: int) -> BudgetRecord:
        """The mandatory part's cost: what ran so far (loading, calibration) plus the
        headline's passes; the record says whether the budget is below it."""
        self.floor_samples = headline_samples
        self.floor_pass = self.pass_seconds
        self.floor_seconds = self.elapsed() + self.passes_cost(headline_passes)
        return self.record()

    @property
    def below_floor(self) -> bool:
        return self.floor_seconds is not None and self.budget < self.floor_seconds

    def record(self) -> BudgetRecord:
        return BudgetRecord(
            seconds=self.budget,
            floor_seconds=self.floor_seconds,
            samples=self.floor_samples,
            pass_seconds=self.floor_pass if self.floor_seconds is not None else self.pass_seconds,
            not_measured=self.not_measured,
        )
