"""Helpers of the PTQ4xx rules (what the converter's own log says)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ptqtui.check.context import Context
    from ptqtui.inputs.mapper_log import LogOutput, MapperLog

# Node rows the converter adds itself: no ONNX node of that name exists to configure
CONVERTER_NODE_PREFIXES = ("HZ_PREPROCESS_FOR_", "UNIT_CONV_FOR_")
CONVERTER_NODE_SUFFIXES = ("_calibrated_Requantize", "_calibrated_pad", "_reshape_output")


def is_model_node(name: str) -> bool:
    """Whether a node-table name can be an ONNX node of the user's model (node_info key)."""
    return (
        not name.startswith(CONVERTER_NODE_PREFIXES)
        and not name.endswith(CONVERTER_NODE_SUFFIXES)
        and not name.startswith("...")
    )


def output_producer(
    ctx: Context, log: MapperLog, output: LogOutput
) -> tuple[str | None, str | None]:
    """(node name, op type) of the node producing a logged output, when it can be told."""
    graph = ctx.maybe("graph")
    if graph is not None:
        node = graph.producer.get(output.name)
        if node is None and output.name in graph.node_names:
            node = output.name
        if node is not None:
            return node, graph.node(node).op_type
    row = log.node(output.name)
    if row is not None:  # the older generation names outputs by their node
        return row.name, row.type
    # the newer names them by tensor; the producing node's row carries the same cosine
    for row in reversed(log.nodes):
        if row.cosine is not None and row.cosine == output.cosine:
            return row.name, row.type
    return None, None


def op_label(op_type: str | None) -> str:
    """The ONNX op a converter type stands for, for messages ('HzSoftmax' -> 'Softmax')."""
    if op_type is None:
        return "?"
    for prefix in ("HzSQuantized", "HzQuantized", "Hz"):
        if op_type.startswith(prefix) and len(op_type) > len(prefix):
            return op_type[len(prefix) :]
    return op_type
