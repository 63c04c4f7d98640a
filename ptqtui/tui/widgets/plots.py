"""Plots of a Diagnosis drawn with textual-plotext (braille and block characters, any terminal).

Each plot takes report records and draws them; legends are plain Text beside the plot so they
read the same in NO_COLOR and over a poor SSH client.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual_plotext import PlotextPlot

from ptqtui.policy import SENSITIVE_COSINE, TARGET_COSINE
from ptqtui.tui.widgets.text import BAD, GOOD, WARN, clip_middle, gen, num

if TYPE_CHECKING:
    from ptqtui.analysis.results import CurvePoint, MethodThreshold, NodeRow

# tags drawn on the plot above each method's threshold, in the legend's order
METHOD_TAGS = ("M", "a", "b", "c", "d", "e", "K")
CHOSEN_COLOR = "red+"
OTHER_COLOR = "blue+"
BARS_COLOR = "green"
RANKED = 12  # nodes in the sensitivity ranking
SMALL_LEVELS = 16  # int8 levels below which a channel is "squeezed" by a per-tensor scale


def _nice_ticks(top: float, n: int = 4) -> tuple[list[float], list[str]]:
    values = [top * k / n for k in range(n + 1)]
    return values, ["0", *(f"{v:.3g}" for v in values[1:])]


def method_tag(index: int) -> str:
    return METHOD_TAGS[index] if index < len(METHOD_TAGS) else str(index)


def method_label(m: MethodThreshold) -> str:
    """'max', 'p99.999%', 'kl': short enough for a legend at 80 columns."""
    if m.method.startswith("max_percentile "):
        p = float(m.method.split(" ", 1)[1])
        return f"p{100 * p:g}%"
    return m.method


class _Plot(PlotextPlot):
    """A PlotextPlot drawn once from records (redrawn on resize by the widget itself)."""

    DEFAULT_CSS = """
    _Plot { height: 1fr; min-height: 8; }
    """

    def on_mount(self) -> None:
        self.plt.clear_figure()
        self.draw()

    def draw(self) -> None:  # pragma: no cover - every subclass draws
        raise NotImplementedError


class ActivationHistogram(_Plot):
    """|x| histogram of a node's activation input (log counts), each calibration method's
    threshold a vertical line with its tag on top; the threshold in use in red."""

    def __init__(self, node: NodeRow, **kwargs) -> None:
        super().__init__(**kwargs)
        self.node = node

    def draw(self) -> None:
        n, plt = self.node, self.plt
        plt.title(f"|x| at the input of {n.name} (log counts)")
        if not n.histogram:
            plt.title(f"{n.name}: no histogram measured")
            return
        top = n.histogram_top or max(abs(n.act_min or 0.0), abs(n.act_max or 0.0)) or 1.0
        k = len(n.histogram)
        xs = [top * (i + 0.5) / k for i in range(k)]
        ys = [math.log10(1 + c) for c in n.histogram]
        ymax = max(max(ys), 1.0)
        plt.plot(xs, ys, marker="braille", fillx=True, color=BARS_COLOR)
        for i, m in enumerate(n.thresholds):
            color = CHOSEN_COLOR if m.chosen else OTHER_COLOR
            plt.vline(m.threshold, color)
            tag = method_tag(i) + ("*" if m.chosen else "")  # marked without colour too
            plt.text(tag, m.threshold, ymax * 1.08, color=color, alignment="center")
        if n.threshold is not None and not any(m.chosen for m in n.thresholds):
            plt.vline(n.threshold, CHOSEN_COLOR)
        plt.ylim(0, ymax * 1.15)
        decades = list(range(int(ymax) + 1))
        plt.yticks(decades, [_count(10**d) for d in decades])
        plt.xlim(0, top)
        plt.xticks(*_nice_ticks(top))


def _count(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def histogram_legend(node: NodeRow) -> Text:
    """One line per two methods: tag, method, threshold; the one in use bold red."""
    text = Text()
    if not node.thresholds:
        text.append("thresholds were not recorded in this diagnosis", style="dim")
        if node.threshold is not None:
            text.append(f"; in use: {gen(node.threshold)}", style=BAD)
        return text
    for i, m in enumerate(node.thresholds):
        style = f"bold {BAD}" if m.chosen else ""
        text.append(f"{method_tag(i)} ", style="bold")
        text.append(f"{method_label(m)} {gen(m.threshold)}", style=style)
        text.append("  " if i < len(node.thresholds) - 1 else "")
    text.append("\nred, *: the threshold in use", style="dim")
    if node.act_max is not None:
        top = max(abs(node.act_min or 0.0), abs(node.act_max))
        used = node.threshold
        if used and top > used:
            share = 100 * (1 - used / top)
            text.append(f"; it clips the top {share:.0f} % of the range", style="dim")
    return text


class WeightRanges(_Plot):
    """Per output channel max |w| as bars, the per-tensor max (what one int8 scale spans)
    as a line: narrow channels use few of its 127 levels."""

    def __init__(self, node: NodeRow, **kwargs) -> None:
        super().__init__(**kwargs)
        self.node = node

    def draw(self) -> None:
        n, plt = self.node, self.plt
        values = list(n.weight_channel_max)
        if not values:
            plt.title(f"{n.name} has no weights")
            return
        total = n.weight_channels or len(values)
        more = f" (first {len(values)} of {total})" if total > len(values) else ""
        plt.title(f"max |w| per output channel of {n.name}{more}")
        xs = list(range(len(values)))
        if len(values) <= 64:
            plt.bar(xs, values, color=BARS_COLOR, marker="sd", width=0.8)
        else:
            plt.plot(xs, values, color=BARS_COLOR, marker="braille")
        tensor = n.weight_tensor_max if n.weight_tensor_max is not None else max(values)
        plt.hline(tensor, CHOSEN_COLOR)
        top = tensor * 1.1 if tensor > 0 else 1.0
        plt.ylim(0, top)
        plt.yticks(*_nice_ticks(tensor if tensor > 0 else 1.0))
        step = max(1, -(-len(values) // 8))  # about eight labelled channels
        plt.xticks(list(range(0, len(values), step)))
        plt.xlabel("output channel")


def weights_legend(node: NodeRow) -> Text:
    values = node.weight_channel_max
    text = Text()
    if not values:
        return text.append("no per-channel weight ranges in this diagnosis", style="dim")
    tensor = node.weight_tensor_max if node.weight_tensor_max is not None else max(values)
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    text.append("red line: ", style="dim").append(f"per-tensor max |w| {gen(tensor)}", style=BAD)
    text.append("  median channel ", style="dim").append(gen(median))
    if node.weight_range_ratio is not None:
        text.append("  widest / median ", style="dim").append(gen(node.weight_range_ratio))
    if tensor > 0:
        levels = [127 * v / tensor for v in values]
        squeezed = sum(1 for lv in levels if lv < SMALL_LEVELS)
        text.append(
            f"\nper-tensor int8: {squeezed} of {len(values)} channels use fewer than "
            f"{SMALL_LEVELS} of 127 levels; per_channel gives each its own scale",
            style=WARN if squeezed else "dim",
        )
    return text


class ErrorCurve(_Plot):
    """Model output cosine as nodes are quantized in topological order."""

    def __init__(self, curve: Sequence[CurvePoint], **kwargs) -> None:
        super().__init__(**kwargs)
        self.curve = tuple(curve)

    def draw(self) -> None:
        plt = self.plt
        points = [p for p in self.curve if not math.isnan(p.cosine)]
        plt.title("Accumulated error: output cosine as nodes are quantized in order")
        if not points:
            return
        xs = [p.index + 1 for p in points]
        ys = [p.cosine for p in points]
        low = min(min(ys), TARGET_COSINE)
        plt.plot(xs, ys, marker="braille", color=BARS_COLOR)
        plt.hline(TARGET_COSINE, OTHER_COLOR)
        for p, drop in largest_drops(self.curve):
            plt.text(f"{p.index + 1}", p.index + 1, p.cosine, color=CHOSEN_COLOR)
            del drop
        bottom = low - (1.0 - low) * 0.05
        plt.ylim(bottom, 1.0 + (1.0 - low) * 0.02)
        ys_ticks = [bottom + (1.0 - bottom) * k / 4 for k in range(5)]
        plt.yticks(ys_ticks, [f"{v:.4f}" for v in ys_ticks])
        n = len(self.curve)
        plt.xlim(0, n + 1)
        step = max(1, -(-n // 8))
        plt.xticks(list(range(1, n + 1, step)))
        plt.xlabel("nodes quantized")


def largest_drops(curve: Sequence[CurvePoint], n: int = 3) -> list[tuple[CurvePoint, float]]:
    steps = [
        (curve[i], curve[i - 1].cosine - curve[i].cosine)
        for i in range(1, len(curve))
        if not math.isnan(curve[i].cosine) and not math.isnan(curve[i - 1].cosine)
    ]
    steps.sort(key=lambda t: -t[1])
    return [(p, d) for p, d in steps[:n] if d > 0]


def curve_legend(curve: Sequence[CurvePoint]) -> Text:
    text = Text("blue line: target cosine ", style="dim").append(f"{TARGET_COSINE}")
    drops = largest_drops(curve)
    if drops:
        text.append("\nlargest steps (red numbers): ", style="dim")
        text.append(
            ", ".join(f"{p.index + 1} {clip_middle(p.node, 24)} -{d:.4f}" for p, d in drops)
        )
    if curve:
        text.append("\nafter all nodes: ", style="dim").append(num(curve[-1].cosine))
    return text


class SensitivityRanking(_Plot):
    """The nodes whose quantization alone costs the model output most, worst on top."""

    def __init__(self, nodes: Sequence[NodeRow], **kwargs) -> None:
        super().__init__(**kwargs)
        self.ranked = ranked_nodes(nodes)

    def draw(self) -> None:
        plt = self.plt
        plt.title("Sensitivity: 1 - output cosine with only this node quantized")
        if not self.ranked:
            return
        room = max(10, min(28, self.size.width // 3 or 20))
        labels = [clip_middle(n.name, room) for n in reversed(self.ranked)]
        values = [1.0 - (n.sensitivity_cosine or 1.0) for n in reversed(self.ranked)]
        plt.bar(labels, values, orientation="horizontal", color=BARS_COLOR, width=0.6)
        plt.vline(1.0 - SENSITIVE_COSINE, CHOSEN_COLOR)
        top = max(max(values), 1.0 - SENSITIVE_COSINE)
        ticks = [top * k / 4 for k in range(5)]
        plt.xticks(ticks, [f"{v:.4f}" for v in ticks])


def ranked_nodes(nodes: Sequence[NodeRow], n: int = RANKED) -> list[NodeRow]:
    measured = [
        r
        for r in nodes
        if r.sensitivity_cosine is not None and not math.isnan(r.sensitivity_cosine)
    ]
    measured.sort(key=lambda r: r.sensitivity_cosine)  # type: ignore[arg-type, return-value]
    return measured[:n]


def sensitivity_legend(nodes: Sequence[NodeRow]) -> Text:
    ranked = ranked_nodes(nodes)
    text = Text("red line: the converter's sensitive-node line (cosine ", style="dim")
    text.append(f"{SENSITIVE_COSINE}").append(")", style="dim")
    sensitive = [r for r in ranked if (r.sensitivity_cosine or 1.0) < SENSITIVE_COSINE]
    if ranked:
        worst = ranked[0]
        text.append("\nworst: ", style="dim").append(worst.name, style="bold")
        text.append(f" cosine {num(worst.sensitivity_cosine, 6)}")
        if worst.int16_gain is not None and worst.int16_gain > 0:
            text.append(f"  int16 gains {worst.int16_gain:+.4f}", style=GOOD)
        text.append(f"\n{len(sensitive)} of the {len(ranked)} shown are below the line")
    return text
