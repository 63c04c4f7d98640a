"""Node names as the converter writes them: an unnamed node is called by its output tensor."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from ptqtui.rules import ptq203_unknown_node_name as ptq203

from ptqtui.inputs.model import build_graph
from ptqtui.quant.graph import QuantGraph
from tests.check.factories import config_context, mapper_config


def unnamed_model() -> onnx.ModelProto:
    """An old PyTorch/Paddle-style export: no node names, numbered tensors (127, 130)."""
    w = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["images", "w"], ["127"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["127"], ["130"]),
        helper.make_node("GlobalAveragePool", ["130"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, 1, 1])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_unnamed_nodes_take_their_output_tensor_name_everywhere():
    model = unnamed_model()
    graph = build_graph(model)
    assert graph.node_names == ("127", "130", "out")
    assert graph.resolve_node("Conv_0") == "127" and graph.resolve_node("130") == "130"
    assert graph.resolve_node("Conv_9") is None
    assert list(QuantGraph(model).nodes) == ["127", "130", "out"]  # the simulator agrees
    assert any("output tensor" in n for n in graph.notes)


def test_named_nodes_keep_their_names_and_a_taken_tensor_name_falls_back():
    model = unnamed_model()
    model.graph.node[2].name = "130"  # a named node already uses the tensor name '130'
    graph = build_graph(model)
    assert graph.node_names == ("127", "Relu_1", "130")


def test_ptq203_points_an_old_name_to_the_converter_name(tmp_path):
    config = mapper_config(model__node_info={"Conv_0": {"ON": "CPU"}})
    [finding] = ptq203.check(config_context(tmp_path, config, model=unnamed_model()))
    assert "the converter names that node '127'" in finding.message
    [edit] = finding.remedy.config
    assert edit.rename and edit.node == "Conv_0" and edit.new == "127"


def test_ptq203_quiet_on_the_converter_name(tmp_path):
    config = mapper_config(model__node_info={"127": {"ON": "CPU"}})
    assert ptq203.check(config_context(tmp_path, config, model=unnamed_model())) == []
