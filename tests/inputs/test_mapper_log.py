from __future__ import annotations

from pathlib import Path

import pytest

from ptqtui.errors import PtqInputError
from ptqtui.inputs.mapper_log import find_mapper_log, load_mapper_log, parse_mapper_log

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def _rows(path: Path, title: str) -> int:
    """Rows of the last table after `title` in a fixture, counted independently of the parser."""
    lines = path.read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.rstrip().endswith(title))
    count = 0
    for line in lines[start + 4 :]:
        if not line.strip() or line.startswith(("20", "```")):
            break
        count += 1
    return count


def test_older_generation_x3_kl_with_cpu_split():
    path = LOGS / "x3_kl_cpu_split.log"
    log = load_mapper_log(path)
    assert log.samples == 31 and log.samples_line == 14
    assert log.method_run == "kl" and log.chosen is None
    assert log.march == "bernoulli2" and log.grid is None
    assert len(log.nodes) == _rows(path, "The converted model node information:") == 9
    assert [n.name for n in log.cpu_nodes] == ["133", "output_reshape_0"]
    assert log.subgraphs == (0, 1)
    conv = log.node("127")
    assert conv is not None and conv.cosine == pytest.approx(0.998877)
    assert conv.threshold == pytest.approx(5.012934) and conv.dtype is None
    assert log.node("133").cosine is None and log.node("133").subgraph is None
    [out] = log.outputs
    assert (out.name, out.cosine, out.l1, out.l2, out.chebyshev) == (
        "139",
        pytest.approx(0.961118),
        pytest.approx(0.48212),
        pytest.approx(0.091733),
        pytest.approx(3.812555),
    )
    assert log.complete


def test_newer_generation_in_out_datatype_truncated_log_gives_what_it_has():
    path = LOGS / "x5_default_kl_truncated.log"
    log = load_mapper_log(path)
    assert log.samples == 64  # the set's count, not one input's
    assert log.dtype_conflict == "float32"
    assert log.method_run == "default calibration"
    assert log.chosen == "kl:num_bins=1024" and log.chosen_method == "kl"
    assert not log.per_channel and log.march == "bayes-e"
    assert len(log.nodes) == _rows(path, "The converted model node information:") == 12
    requant = log.node("/backbone/s1/Split_output_0_calibrated_Requantize")
    assert requant.cosine is None and requant.threshold is None and requant.dtype == "int8/int8"
    head = log.node("/head/cls/out/Conv")
    assert head.input_dtype == "int8" and head.output_dtype == "int32"
    assert log.outputs == () and not log.complete


def test_newer_generation_modelwise_search_grid_int16_and_collapsed_output():
    path = LOGS / "x5_modelwise_collapsed.log"
    log = load_mapper_log(path)
    assert log.grid is not None
    assert log.grid.calibration_type == ("max", "kl")
    assert log.grid.max_percentile == (0.99995, 1.0)
    assert log.grid.per_channel == (True, False) and log.grid.asymmetric == (True, False)
    assert log.grid.similarity == 0.995 and log.grid.metric == "cosine-similarity"
    assert log.method_run == "modelwise search"
    assert log.chosen_method == "max-percentile" and log.chosen_percentile == 0.99995
    assert log.per_channel and not log.asymmetric
    assert log.samples == 24
    assert len(log.nodes) == _rows(path, "The main quantized node information:")
    assert [n.name for n in log.cpu_nodes] == ["/mix/concat/Concat"]
    assert log.cpu_nodes[0].dtype == "float" and log.subgraphs == (0, 1)
    assert log.node("/head/softmax/Softmax").dtype == "int16"
    assert [(s.node, s.side, s.dtype) for s in log.dtype_settings] == [
        ("/head/softmax/Softmax", "input", "int16"),
        ("/head/softmax/Softmax", "output", "int16"),
    ]
    [fallback] = log.fallbacks
    assert (fallback.node, fallback.op_type) == ("/mix/concat/Concat", "Concat")
    assert fallback.port == "input1"
    assert [(o.name, o.cosine) for o in log.outputs] == [("logits", 0.912044), ("probs", 0.000021)]
    assert len(log.outputs) == _rows(path, "The quantized model output:")
    assert log.complete


def test_misaligned_rows_fall_back_to_tokens_and_unknown_lines_are_skipped():
    text = "\n".join(
        [
            "some banner nobody knows",
            "2024-01-01 00:00:00,000 file: a.py func: a line No: 1 There are 7 samples in the "
            "calibration data set.",
            "The main quantized node information:",
            "Node ON Subgraph Type Cosine Similarity Threshold DataType",
            "conv_a BPU id(0) HzSQuantizedConv 0.99 1.5 int8",
            "conv_b   CPU --  Conv 0.5 -- float",
            "",
            "more noise: Select",
            "```shell",
            "=" * 60,
            "Node                    ON   Subgraph  Type  Cosine Similarity",
            "-" * 60,
            "...age1/relu/Relu_pad   BPU  id(0)     HzPad 0.75",
        ]
    )
    first = parse_mapper_log(text.split("```")[0])
    assert [(n.name, n.on, n.cosine, n.threshold, n.dtype) for n in first.nodes] == [
        ("conv_a", "BPU", 0.99, 1.5, "int8"),
        ("conv_b", "CPU", 0.5, None, "float"),
    ]
    log = parse_mapper_log(text)
    assert log.samples == 7
    assert [(n.name, n.on, n.cosine, n.threshold, n.dtype) for n in log.nodes] == [
        ("...age1/relu/Relu_pad", "BPU", 0.75, None, None),
    ]  # a table pasted without its title replaces the earlier one (the last table wins)
    [cut] = log.nodes
    assert cut.truncated and cut.names("/stage1/relu/Relu_pad") and not cut.names("/x/Relu")


def test_a_file_that_is_not_a_log_is_one_line_error(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    with pytest.raises(PtqInputError, match="not a log"):
        load_mapper_log(other)
    with pytest.raises(PtqInputError, match="no such file"):
        load_mapper_log(tmp_path / "missing.log")
    binary = tmp_path / "x.log"
    binary.write_bytes(b"\x00\x01\x02")
    with pytest.raises(PtqInputError, match="binary"):
        load_mapper_log(binary)


def test_found_next_to_the_config_or_in_working_dir(tmp_path):
    config = tmp_path / "mapper.yaml"
    config.write_text("x: 1\n")
    assert find_mapper_log(config) is None
    work = tmp_path / "model_output"
    work.mkdir()
    (work / "hb_mapper_makertbin.log").write_text("x")
    assert find_mapper_log(config, work) == work / "hb_mapper_makertbin.log"
    (tmp_path / "hb_mapper_makertbin.log").write_text("x")
    assert find_mapper_log(config, work) == tmp_path / "hb_mapper_makertbin.log"
