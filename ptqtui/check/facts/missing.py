"""The one exception of the fact layer: a fact that cannot be computed, and why."""

from __future__ import annotations


class MissingFact(Exception):
    """A fact a rule needs cannot be computed; the rule is skipped with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutOfTimeFact(MissingFact):
    """A fact the time budget left no room for: time does not come back, so a later run of
    the rules in the same diagnosis does not try it again."""
