"""The Nodes screen shows the converter's per-node cosine beside ours, readable at 80x24."""

from __future__ import annotations

import dataclasses

from textual.widgets import DataTable

from ptqtui.analysis.converter import compare
from ptqtui.inputs.mapper_log import parse_mapper_log
from ptqtui.tui.app import make_viewer
from ptqtui.tui.screens.nodes import NodesView
from tests.prepared import prepared_diagnosis


def _with_converter():
    d = prepared_diagnosis()
    lines = ["The main quantized node information:", "Node  ON  Subgraph  Type  Cosine Similarity"]
    cos = {"stem/Conv": 0.9991, "head/Gemm": 0.9012, "head/Softmax": 0.5}
    lines += [f"{n}  BPU  id(0)  HzSQuantizedConv  {c}" for n, c in cos.items()]
    evidence = compare(parse_mapper_log("\n".join(lines)), d.analysis)
    return dataclasses.replace(d, converter=evidence)


async def test_converter_column_at_80x24_and_sortable():
    app = make_viewer(_with_converter())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        table = app.query_one("#nodes-table", DataTable)
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[labels.index("cosine") + 1] == "conv."
        assert table.get_row("head/Gemm")[labels.index("conv.")].plain == "0.9012"
        assert table.get_row("block1/Add")[labels.index("conv.")].plain == "-"
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        view = app.query_one(NodesView)
        view.sort_column = "converter"
        view.refresh_rows(keep_cursor=False)
        assert [str(k.value) for k in table.rows][:2] == ["head/Softmax", "head/Gemm"]


async def test_no_column_without_a_log():
    app = make_viewer(prepared_diagnosis())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("3")
        table = app.query_one("#nodes-table", DataTable)
        assert "conv." not in [str(c.label) for c in table.columns.values()]
