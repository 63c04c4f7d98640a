"""The converter's node table beside the simulator's, on real parsed logs and real records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ptqtui.analysis.converter import compare
from ptqtui.analysis.results import Analysis, NodeRow, Similarity
from ptqtui.inputs.mapper_log import load_mapper_log, parse_mapper_log

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"
ROOT = Path(__file__).resolve().parents[2]


def _row(name: str, cosine: float, output: str | None = None) -> NodeRow:
    sim = Similarity(cosine, 0.0, 0.0, 0.0, 0.0)
    return NodeRow(name, "Conv", output or f"{name}_output_0", "int8", "BPU", sim)


def _log(rows: list[tuple[str, float]]):
    lines = ["The main quantized node information:", "Node  ON  Subgraph  Type  Cosine Similarity"]
    lines += [f"{n}  BPU  id(0)  HzSQuantizedConv  {c}" for n, c in rows]
    return parse_mapper_log("\n".join(lines))


def test_same_ranking_agrees():
    log = _log([("a", 0.999), ("b", 0.95), ("c", 0.99), ("d", 0.90), ("e", 0.998)])
    ours = Analysis(
        "int8",
        nodes=tuple(
            _row(n, c)
            for n, c in [("a", 0.9995), ("b", 0.97), ("c", 0.995), ("d", 0.93), ("e", 0.999)]
        ),
    )
    ev = compare(log, ours)
    assert ev.spearman == pytest.approx(1.0) and ev.top_k_overlap == 5
    assert ev.agreement == "agree"
    assert [r.converter_rank for r in ev.rows] == [5, 2, 3, 1, 4]
    assert [r.simulator_rank for r in ev.rows] == [5, 2, 3, 1, 4]


def test_reversed_ranking_disagrees_and_unnamed_nodes_match_by_output_tensor():
    log = _log([("127", 0.999), ("130", 0.99), ("133", 0.95), ("HZ_PREPROCESS_FOR_x", 0.9999)])
    ours = Analysis(
        "int8",
        nodes=(
            _row("Conv_0", 0.95, output="127"),
            _row("Conv_1", 0.99, output="130"),
            _row("Conv_2", 0.999, output="133"),
            _row("Relu_3", 0.99),
        ),
    )
    ev = compare(log, ours)
    assert [r.node for r in ev.rows] == ["Conv_0", "Conv_1", "Conv_2"]
    assert ev.spearman == pytest.approx(-1.0) and ev.agreement == "disagree"
    assert ev.converter_only == 1 and ev.simulator_only == 1


def test_without_a_simulation_only_the_converter_table():
    log = load_mapper_log(LOGS / "x5_modelwise_collapsed.log")
    ev = compare(log, None)
    assert ev.agreement == "not compared" and ev.spearman is None
    assert len(ev.rows) == sum(1 for n in log.nodes if n.cosine is not None)
    assert all(r.simulator_cosine is None for r in ev.rows)
    assert [o.reading for o in ev.outputs] == ["below normal", "collapsed"]


@pytest.mark.skipif(os.environ.get("PTQTUI_QUICK") == "1", reason="full demo diagnosis, ~20 s")
def test_a_diagnosis_with_the_log_shows_both_tables(tmp_path):
    import shutil

    from ptqtui.diagnosis import Diagnosis, diagnose
    from ptqtui.report.document import build
    from ptqtui.request import Request

    scenario = tmp_path / "good"
    shutil.copytree(ROOT / "demo_data" / "scenarios" / "good", scenario)
    text = (scenario / "config.yaml").read_text()
    demo = ROOT / "demo_data"
    text = text.replace("../../model.onnx", str(demo / "model.onnx"))
    text = text.replace("../../calibration/", str(demo / "calibration") + "/")
    (scenario / "config.yaml").write_text(text)
    (scenario / "model_output").mkdir()
    _calibrated_model(
        scenario / "model_output" / "signnet_64x64_calibrated_model.onnx",
        {"/stem/relu/Relu_output_0": [0.05], "/b1/dw/relu/Relu_output_0": [0.05]},
    )
    config = scenario / "config.yaml"
    d = diagnose(Request(config=config, mapper_log=LOGS / "x5_modelwise_collapsed.log"))
    assert d.converter.thresholds_used == 2
    # thresholds far too small clip everything: the converter's calibration would cost cosine
    assert d.converter.cosine_converter_thresholds < d.converter.cosine_own_thresholds
    assert d.converter is not None and d.converter.spearman is not None
    assert len(d.converter.rows) >= 15 and all(r.simulator_cosine for r in d.converter.rows)
    assert {"PTQ401", "PTQ407"} <= {f.code for f in d.findings}
    assert Diagnosis.from_json(d.to_json()).converter == d.converter
    texts = [getattr(b, "text", "") for b in build(d)]
    assert "The converter's log" in texts


def _calibrated_model(path: Path, thresholds: dict[str, list[float]], weight: str = "w0") -> Path:
    """A converter-style *_calibrated_model.onnx: HzCalibration nodes (custom domain)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    nodes = [
        helper.make_node(
            "HzCalibration",
            [tensor],
            [f"{tensor}_cal"],
            name=f"{tensor}_HzCalibration",
            domain="horizon",
            thresholds=values,
            qtype="int8",
            switch="ON",
        )
        for tensor, values in thresholds.items()
    ]
    nodes.append(
        helper.make_node(
            "HzCalibration",
            [weight],
            ["w_cal"],
            name="w_cal",
            domain="horizon",
            thresholds=[0.5, 0.75],
            qtype="int8",
        )
    )
    graph = helper.make_graph(
        nodes,
        "calibrated",
        [],
        [],
        initializer=[numpy_helper.from_array(np.zeros((2, 1), np.float32), weight)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("horizon", 1)]
    )
    onnx.save(model, path)
    return path


def test_the_converter_thresholds_are_read_and_put_in_place_of_ours(tmp_path):
    from ptqtui.analysis.converter import with_converter_thresholds
    from ptqtui.inputs.workdir import find_artifacts, read_calibrated_thresholds
    from ptqtui.quant.calibrate import Calibration
    from ptqtui.quant.qparams import ActRange

    work = tmp_path / "model_output"
    work.mkdir()
    path = _calibrated_model(work / "m_calibrated_model.onnx", {"a": [3.0], "z": [9.0]})
    found = find_artifacts(work, "m")
    assert found is not None and found.calibrated == path and found.quantized is None
    thresholds = read_calibrated_thresholds(path)
    assert [(t.tensor, t.weight, t.thresholds, t.qtype, t.on) for t in thresholds] == [
        ("a", False, (3.0,), "int8", True),
        ("z", False, (9.0,), "int8", True),
        ("w0", True, (0.5, 0.75), "int8", True),
    ]
    ours = Calibration("max", {"act:a": ActRange(-1.0, 1.0), "act:b": ActRange(0.0, 2.0)}, {})
    theirs, used = with_converter_thresholds(ours, thresholds)
    assert used == 1 and theirs.activations["act:a"].threshold == 3.0
    assert theirs.activations["act:b"] == ours.activations["act:b"]
