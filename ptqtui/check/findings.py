"""Result objects of the checks: severity, evidence, finding, rule metadata."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ptqtui.remedy import Remedy


class Severity(enum.Enum):
    """Ordered by how much accuracy the kind of problem costs (reference loss bands)."""

    CRITICAL = "critical"  # the > 4 % kind: fix before anything else
    MAJOR = "major"  # the 1.5-4 % kind
    MINOR = "minor"  # small, or hygiene
    INFO = "info"  # context

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.lower())
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"severity {text!r} is not one of {allowed}") from None


_RANKS = {Severity.INFO: 0, Severity.MINOR: 1, Severity.MAJOR: 2, Severity.CRITICAL: 3}


@dataclass(frozen=True, slots=True)
class Evidence:
    what: str  # "mean of input channel 0"
    observed: str  # "104.1"
    expected: str | None = None  # "about 123.7 when the model expects RGB"
    where: str | None = None  # "calib/0007.bin", "node conv1/Conv", "config.yaml line 12"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    evidence: tuple[Evidence, ...] = ()
    fix: str | None = None
    measured: str | None = None
    related: tuple[str, ...] = field(default=())
    remedy: Remedy | None = None  # what to change, typed (the planner reads this, not text)
