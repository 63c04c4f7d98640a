"""The one exception of the fact layer: a fact that cannot be computed, and why."""

from __future__ import annotations


class MissingFact(Exception):
    """A fact a rule needs cannot be computed; the rule is skipped with this reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
