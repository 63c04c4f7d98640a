"""Number and severity formatting shared by the screens (plain text stays legible in NO_COLOR)."""

from __future__ import annotations

import math
import os

from rich.text import Text

from ptqtui.check.findings import Severity
from ptqtui.policy import LossBand

# NO_COLOR: Textual greys every colour by luminance, and red turns near-invisible on a dark
# background; so without colour the meaning rides on bold, reverse and the words themselves.
MONO = bool(os.environ.get("NO_COLOR"))
BAD = "bold" if MONO else "bold red"  # failures, the large loss band
WARN = "bold" if MONO else "yellow"  # not measured, within noise, skipped
GOOD = "bold" if MONO else "green"  # YAML to add, the best setting
REMOVED = "" if MONO else "red"  # diff lines taken away (the "-" says it)
SEVERITY_STYLE = {
    Severity.CRITICAL: "bold reverse" if MONO else "bold red",
    Severity.MAJOR: "bold" if MONO else "bold yellow",
    Severity.MINOR: "" if MONO else "cyan",
    Severity.INFO: "dim",
}
BAND_STYLE = {
    LossBand.LARGE: "bold reverse" if MONO else "bold red",
    LossBand.MEDIUM: "bold" if MONO else "bold yellow",
    LossBand.SMALL: "bold" if MONO else "bold green",
}
MISSING = "-"


def severity_text(severity: Severity, width: int = 0) -> Text:
    return Text(severity.value.upper().ljust(width), style=SEVERITY_STYLE[severity])


def num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def gen(value: float | None) -> str:
    """Compact general format for ranges and ratios."""
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def pct(value: float | None, digits: int = 1) -> str:
    """A 0..1 fraction as a percentage."""
    if value is None or math.isnan(value):
        return MISSING
    return f"{100 * value:.{digits}f} %"


def pct_interval(
    value: float | None, low: float | None, high: float | None, *, unit: bool = True
) -> str:
    """An agreement with its 95 % interval, in points: "47 (38-57) %", "99.6 (99.4-99.8) %"
    when it is narrow (`unit` False: no " %", a column's header says it); without an interval
    the plain percentage."""
    if value is None or math.isnan(value):
        return MISSING
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return pct(value)
    d = 0 if high - low >= 0.05 else 1  # a narrow interval keeps a decimal
    text = f"{100 * value:.{d}f} ({100 * low:.{d}f}-{100 * high:.{d}f})"
    return f"{text} %" if unit else text


def signed(value: float | None, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return MISSING
    return f"{value:+.{digits}f}"


def seconds(value: float) -> str:
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.0f} min"


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def clip_middle(text: str, width: int) -> str:
    """Keep both ends of a long node name: '/backbone/la…/conv2/Conv'."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]
