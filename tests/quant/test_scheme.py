from __future__ import annotations

import pytest

from ptqtui.quant.graph import QuantGraph
from ptqtui.quant.scheme import NodeOverride, QuantSettings, build_scheme

from .factories import small_cnn


@pytest.fixture(scope="module")
def graph() -> QuantGraph:
    return QuantGraph(small_cnn())


def test_settings_are_validated():
    with pytest.raises(ValueError, match="calibration_type"):
        QuantSettings(calibration_type="entropy")
    with pytest.raises(ValueError, match="max_percentile"):
        QuantSettings(max_percentile=1.5)
    with pytest.raises(ValueError, match="ON must be"):
        NodeOverride("conv1", on="GPU")
    with pytest.raises(ValueError, match="both"):
        QuantSettings(run_on_cpu=("a",), run_on_bpu=("a",))


def test_default_scheme_int8_everywhere_outputs_and_softmax_float(graph):
    s = build_scheme(graph)
    assert s.dtype("act:x") == "int8" and s.dtype("w:conv1") == "int8"
    assert s.dtype("b:conv1") == "int32"
    # Softmax runs on CPU by default; fc (NPU) still hands it int8 logits
    assert s.dtype("act:logits") == "int8"
    assert s.dtype("out:prob") == "float"
    assert s.placement["softmax"] == "CPU"


def test_run_on_cpu_makes_a_node_float(graph):
    s = build_scheme(graph, QuantSettings(run_on_cpu=("fc",)))
    assert s.dtype("w:fc") == "float" and s.placement["fc"] == "CPU"
    assert s.dtype("act:flat") == "int8"  # gap (NPU) -> Flatten -> fc (CPU): int8 boundary
    both = build_scheme(graph, QuantSettings(run_on_cpu=("gap", "fc")))
    assert both.dtype("act:flat") == "float" and both.dtype("act:cat") == "int8"


def test_node_info_wins_over_run_on_cpu_and_sets_int16(graph):
    o = NodeOverride("fc", on="BPU", input_dtype="int16")
    s = build_scheme(graph, QuantSettings(run_on_cpu=("fc",), node_overrides=(o,)))
    assert s.placement["fc"] == "BPU" and s.dtype("act:flat") == "int16"
    assert s.dtype("w:fc") == "int8"


def test_shared_tensor_takes_the_widest_consumer(graph):
    # r1 feeds dw, add and concat: one int16 consumer widens the point
    s = build_scheme(
        graph, QuantSettings(node_overrides=(NodeOverride("add", input_dtype="int16"),))
    )
    assert s.dtype("act:r1") == "int16" and s.dtype("act:x") == "int8"


def test_global_flags(graph):
    s = build_scheme(
        graph,
        QuantSettings(set_all_nodes_int16=True, softmax_input_int8=True, softmax_output_int8=True),
    )
    assert s.dtype("act:x") == "int16"
    assert s.dtype("act:logits") == "int8" and s.dtype("out:prob") == "int8"


def test_unknown_nodes_are_reported_not_fatal(graph):
    s = build_scheme(graph, QuantSettings(run_on_cpu=("nope",)))
    assert s.unmatched == ("nope",)


def test_only_and_without(graph):
    s = build_scheme(graph)
    only = s.only(graph.node_points("dw"))
    assert set(only.active()) == {"act:r1", "w:dw", "b:dw"}
    assert "w:dw" not in s.without(["w:dw"]).active()


@pytest.mark.parametrize("node", ["conv1", "dw", "add", "concat", "gap", "fc"])
def test_widen_node_is_what_node_info_int16_asks(graph, node):
    from ptqtui.quant.scheme import widen_node

    base = build_scheme(graph)
    asked = build_scheme(
        graph,
        QuantSettings(node_overrides=(NodeOverride(node, "BPU", "int16", "int16"),)),
    )
    widened = widen_node(graph, base, node)
    assert dict(widened.dtypes) == dict(asked.dtypes)
    assert any(widened.dtype(k) == "int16" for k in widened.dtypes)


def test_output_type_int16_reaches_through_a_fused_relu(graph):
    wide_out = NodeOverride("conv1", output_dtype="int16")
    s = build_scheme(graph, QuantSettings(node_overrides=(wide_out,)))
    assert s.dtype("act:r1") == "int16"  # conv1 -> relu1 -> r1: the Relu runs inside conv1
    assert s.dtype("act:r2") == "int8"
