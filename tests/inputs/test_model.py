"""The model graph view: order, producers, quantized nodes, normalisation inside the model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ptqtui.errors import PtqInputError
from ptqtui.inputs.model import load_model


def _const(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.float32), name)


def normalising_model() -> onnx.ModelProto:
    """images -> Sub(mean) -> Div(std) -> Conv -> Relu -> GlobalAveragePool -> out."""
    nodes = [
        helper.make_node("Sub", ["images", "mean"], ["centred"], name="norm/Sub"),
        helper.make_node("Div", ["centred", "std"], ["normed"], name="norm/Div"),
        helper.make_node("Conv", ["normed", "w"], ["conv"], name="conv1"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["relu"], ["out"], name="gap"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4, 1, 1])],
        initializer=[
            _const("mean", np.array([123.675, 116.28, 103.53]).reshape(1, 3, 1, 1)),
            _const("std", np.array([58.395, 57.12, 57.375]).reshape(1, 3, 1, 1)),
            _const("w", np.ones((4, 3, 3, 3))),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_graph_view_orders_nodes_and_links_tensors(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(normalising_model(), path)
    graph = load_model(path)
    assert [n.name for n in graph.nodes] == ["norm/Sub", "norm/Div", "conv1", "relu1", "gap"]
    assert graph.producer["conv"] == "conv1" and graph.consumers["conv"] == ("relu1",)
    [inp] = graph.inputs
    assert inp.name == "images" and inp.layout == "NCHW" and inp.shape[1:] == (3, 16, 16)
    assert "conv1" in {n.name for n in graph.quantized_nodes}
    assert "relu" in graph.value_info  # shapes were inferred
    assert graph.opset == 13


def test_leading_normalisation_is_recorded_with_its_constants(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(normalising_model(), path)
    [norm] = load_model(path).normalisation
    assert norm.input == "images"
    assert [s.op_type for s in norm.steps] == ["Sub", "Div"]
    np.testing.assert_allclose(norm.mean, [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(norm.scale, [1 / 58.395, 1 / 57.12, 1 / 57.375], rtol=1e-5)


def test_external_data_models_load(tmp_path):
    path = tmp_path / "ext.onnx"
    onnx.save(normalising_model(), path, save_as_external_data=True, size_threshold=0,
              location="ext.data")  # fmt: skip
    assert (tmp_path / "ext.data").exists()
    assert len(load_model(path).nodes) == 5


@pytest.mark.parametrize(
    "content, words",
    [(b"", "empty"), (b"\x08\x07garbage" * 10, "ONNX"), (None, "no such file")],
)
def test_unreadable_models_give_one_clean_error(tmp_path, content, words):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(PtqInputError) as err:
        load_model(path)
    assert "bad.onnx" in str(err.value) and "\n" not in str(err.value)


def test_checker_nits_onnxruntime_accepts_become_one_line_note(tmp_path):
    model = normalising_model()
    nodes = list(model.graph.node)[::-1]
    del model.graph.node[:]
    model.graph.node.extend(nodes)  # out of order: the checker complains over several lines
    path = tmp_path / "unsorted.onnx"
    onnx.save(model, path)
    graph = load_model(path)  # onnxruntime sorts the nodes itself: the diagnosis goes on
    [note] = [n for n in graph.notes if "checker" in n]
    assert "\n" not in note and "topologically sorted" in note
    assert graph.nodes[0].op_type == "Sub"


def test_duplicate_metadata_keys_are_a_note_not_a_refusal(tmp_path):
    model = normalising_model()
    for value in ("a", "b"):  # as onnxruntime's quant_pre_process can leave them
        entry = model.metadata_props.add()
        entry.key, entry.value = "onnx.infer", value
    path = tmp_path / "dup.onnx"
    onnx.save(model, path)
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    graph = load_model(path)
    assert len(graph.nodes) == 5
    assert any("checker" in n and "onnxruntime runs it" in n for n in graph.notes)


def test_a_model_neither_checker_nor_onnxruntime_loads_is_refused_in_one_line(tmp_path):
    model = normalising_model()
    model.graph.node[0].op_type = "NoSuchOp"
    path = tmp_path / "bad.onnx"
    onnx.save(model, path)
    with pytest.raises(PtqInputError) as err:
        load_model(path)
    text = str(err.value)
    assert text.startswith(f"{path}: the ONNX checker rejects the model") and "\n" not in text
    assert "onnxruntime" in text
