"""The config patcher: changes applied as text, every comment and untouched line kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ptqtui.advise.patch import (
    NODE_INFO,
    REMOVE,
    PatchError,
    add_item,
    apply_changes,
    node_setting,
    rename_node,
    set_key,
    unified_diff,
    write_patched_config,
)
from ptqtui.advise.results import Plan
from ptqtui.errors import UsageError

CONFIGS = Path(__file__).parent / "configs"
INPUT_CONFIGS = Path(__file__).parent.parent / "inputs" / "configs"
X5 = (CONFIGS / "commented_x5.yaml").read_text()
X3 = (CONFIGS / "commented_x3.yaml").read_text()

CALIBRATION = [
    set_key("calibration_parameters.calibration_type", "max"),
    set_key("calibration_parameters.max_percentile", 0.9999),
    set_key("calibration_parameters.per_channel", True),
    add_item("calibration_parameters.optimization", "asymmetric"),
]


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if "#" in line and line.strip().startswith("#")]


def untouched(old: str, new: str) -> set[str]:
    """Lines of `old` that are not in `new` (should be only the changed ones)."""
    return set(old.splitlines()) - set(new.splitlines())


def test_calibration_changes_keep_comments_and_other_lines() -> None:
    result = apply_changes(X5, CALIBRATION)
    data = yaml.safe_load(result.text)["calibration_parameters"]
    assert data["calibration_type"] == "max"
    assert data["max_percentile"] == 0.9999
    assert data["per_channel"] is True
    assert data["optimization"] == "asymmetric"
    assert comments(result.text) == comments(X5)
    # only the calibration_type line changed; inline comments elsewhere are byte-identical
    assert untouched(X5, result.text) == {"  calibration_type: 'default'"}
    assert "  calibration_type: 'max'" in result.text  # the quoting style is kept
    assert "  per_channel: True" in result.text  # the file writes booleans capitalised
    # new keys go at the end of their group, before the comment that follows it
    lines = result.text.splitlines()
    i = lines.index("  calibration_type: 'max'")
    assert lines[i + 1 : i + 4] == [
        "  max_percentile: 0.9999",
        "  per_channel: True",
        "  optimization: asymmetric",
    ]
    assert lines[i + 4] == "  # optimization: set_Softmax_input_int8,set_Softmax_output_int8"


def test_diff_headers_and_content() -> None:
    result = apply_changes(X5, CALIBRATION, name="mapper.yaml")
    assert result.diff.startswith("--- a/mapper.yaml\n+++ b/mapper.yaml\n")
    assert "-  calibration_type: 'default'\n+  calibration_type: 'max'\n" in result.diff
    assert "+  per_channel: True\n" in result.diff
    assert unified_diff(X5, X5) == ""


def test_existing_value_replaced_in_place_with_its_comment() -> None:
    result = apply_changes(X3, [set_key("calibration_parameters.per_channel", True)])
    assert "  per_channel: True  # try True" in result.text
    assert untouched(X3, result.text) == {"  per_channel: False  # try True"}


def test_flow_node_info_over_several_lines_gets_new_entry_and_field() -> None:
    changes = [
        node_setting("/model.21/Concat", input_type="int16", output_type="int16"),
        node_setting("/model.22/Sigmoid", input_type="int16"),
    ]
    result = apply_changes(X5, changes)
    info = yaml.safe_load(result.text)["model_parameters"]["node_info"]
    assert info["/model.21/Concat"] == {"InputType": "int16", "OutputType": "int16"}
    assert info["/model.22/Sigmoid"] == {"ON": "CPU", "InputType": "int16"}
    assert info["/model.0/conv/Conv"]["OutputType"] == "int16"
    assert comments(result.text) == comments(X5)
    assert "# run on CPU (float)" in result.text
    lines = result.text.splitlines()
    i = next(n for n, ln in enumerate(lines) if "/model.22/Sigmoid" in ln)
    assert lines[i] == (
        "    \"/model.22/Sigmoid\": {'ON': 'CPU', 'InputType': 'int16'},"
        "            # run on CPU (float)"
    )
    assert lines[i + 1] == (
        "    \"/model.21/Concat\": {'InputType': 'int16', 'OutputType': 'int16'}"
    )
    assert lines[i + 2] == "  }"


def test_string_node_info_merges_data_types() -> None:
    changes = [
        node_setting("conv_2", input_type="int16", output_type="int16"),
        node_setting("fc", input_type="int16", output_type="int16"),
    ]
    result = apply_changes(X3, changes)
    assert "  node_info: 'conv_1:int16;conv_2:int16;fc:int16'   # data types only" in result.text
    assert comments(result.text) == comments(X3)


def test_string_node_info_becomes_a_mapping_for_placement() -> None:
    result = apply_changes(X3, [node_setting("fc", on="CPU")])
    info = yaml.safe_load(result.text)["model_parameters"]["node_info"]
    assert info == {
        "conv_1": {"InputType": "int16", "OutputType": "int16"},
        "conv_2": {"InputType": "int16", "OutputType": "int16"},
        "fc": {"ON": "CPU"},
    }
    assert "# data types only" in result.text
    assert comments(result.text) == comments(X3)


BLOCK = (
    "model_parameters:\n"
    "  march: bayes-e\n"
    "  node_info:\n"
    "    conv_a:\n"
    "      'ON': BPU   # keep\n"
    "    conv_b: {'InputType': 'int16'}\n"
    "input_parameters:\n"
    "  norm_type: no_preprocess\n"
)


def test_block_node_info() -> None:
    text = BLOCK
    changes = [
        node_setting("conv_a", input_type="int16"),
        node_setting("conv_b", on="CPU"),
        node_setting("head/Gemm", on="CPU"),
    ]
    result = apply_changes(text, changes)
    info = yaml.safe_load(result.text)["model_parameters"]["node_info"]
    assert info == {
        "conv_a": {"ON": "BPU", "InputType": "int16"},
        "conv_b": {"InputType": "int16", "ON": "CPU"},
        "head/Gemm": {"ON": "CPU"},
    }
    assert "      'ON': BPU   # keep\n      'InputType': int16\n" in result.text


def test_node_info_added_when_missing() -> None:
    path = INPUT_CONFIGS / "nv12_from_rgb.yaml"
    text = path.read_text()
    result = apply_changes(
        text,
        [
            node_setting("head/Gemm", on="CPU"),
            node_setting("block3/pw/Conv", input_type="int16", output_type="int16"),
        ],
    )
    info = yaml.safe_load(result.text)["model_parameters"]["node_info"]
    assert info["head/Gemm"] == {"ON": "CPU"}
    assert info["block3/pw/Conv"] == {"InputType": "int16", "OutputType": "int16"}
    assert "  output_model_file_prefix: 'mobilenetv2_224x224_nv12'\n  node_info: {\n" in (
        result.text
    )
    assert comments(result.text) == comments(text)


@pytest.mark.parametrize("path", sorted(INPUT_CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_input_config_patches_cleanly(path: Path) -> None:
    text = path.read_text()
    changes = [
        *CALIBRATION,
        add_item("calibration_parameters.run_on_cpu", "head/Gemm"),
        node_setting("x/Conv", input_type="int16", output_type="int16"),
        set_key("input_parameters.input_type_train", "rgb"),
    ]
    result = apply_changes(text, changes)  # verifies the read-back itself
    assert comments(result.text) == comments(text)
    assert result.text.count("\n") >= text.count("\n")


def test_missing_group_is_appended() -> None:
    text = "model_parameters:\n    march: bayes\n"
    result = apply_changes(text, [set_key("calibration_parameters.calibration_type", "kl")])
    assert result.text == (
        "model_parameters:\n    march: bayes\ncalibration_parameters:\n    calibration_type: kl\n"
    )


def test_remove_key_and_no_trailing_newline() -> None:
    text = "calibration_parameters:\n  max_percentile: 0.99995 # x\n  calibration_type: max"
    result = apply_changes(
        text,
        [
            set_key("calibration_parameters.max_percentile", REMOVE),
            set_key("calibration_parameters.per_channel", True),
        ],
    )
    assert result.text == "calibration_parameters:\n  calibration_type: max\n  per_channel: true"


def test_crlf_line_endings_kept() -> None:
    text = X3.replace("\n", "\r\n")
    result = apply_changes(text, CALIBRATION)
    assert "\n" not in result.text.replace("\r\n", "")
    assert yaml.safe_load(result.text)["calibration_parameters"]["per_channel"] is True


def test_optimization_item_appended_once() -> None:
    result = apply_changes(X3, [add_item("calibration_parameters.optimization", "asymmetric")])
    assert "  optimization: set_model_output_int8,asymmetric\n" in result.text
    again = apply_changes(
        result.text, [add_item("calibration_parameters.optimization", "asymmetric")]
    )
    assert again.text == result.text


def test_flow_group_refused() -> None:
    with pytest.raises(PatchError):
        apply_changes("calibration_parameters: {calibration_type: max}\n", CALIBRATION[:1])


def _plan(text: str | None) -> Plan:
    return Plan("route", 0.99, (), None, "", text)


def test_write_refuses_the_users_config(tmp_path: Path) -> None:
    user = tmp_path / "mapper.yaml"
    user.write_text(X5)
    with pytest.raises(UsageError):
        write_patched_config(_plan("x: 1\n"), user, user)
    with pytest.raises(UsageError):
        write_patched_config(_plan("x: 1\n"), tmp_path / "." / "mapper.yaml", user)
    assert user.read_text() == X5


def test_write_is_atomic_and_complete(tmp_path: Path) -> None:
    user = tmp_path / "mapper.yaml"
    user.write_text(X5)
    patched = apply_changes(X5, CALIBRATION).text
    out = write_patched_config(_plan(patched), tmp_path / "patched.yaml", user)
    assert out.read_text() == patched
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(UsageError):
        write_patched_config(_plan(None), tmp_path / "other.yaml", user)


def test_relocation_note_for_relative_paths(tmp_path: Path) -> None:
    from ptqtui.advise.patch import relocation_note

    user = tmp_path / "cfg" / "mapper.yaml"
    assert relocation_note(tmp_path / "cfg" / "out.yaml", user, X5) is None
    note = relocation_note(tmp_path / "elsewhere.yaml", user, X5)
    assert note is not None and "onnx_model ./model.onnx" in note
    assert (
        relocation_note(tmp_path / "elsewhere.yaml", user, "model_parameters:\n  march: x\n")
        is None
    )


_KEYS = st.sampled_from(
    [
        ("calibration_parameters.calibration_type", st.sampled_from(["max", "kl", "mix"])),
        ("calibration_parameters.max_percentile", st.sampled_from([0.99999, 0.9999, 0.999])),
        ("calibration_parameters.per_channel", st.booleans()),
        ("input_parameters.input_type_train", st.sampled_from(["rgb", "bgr"])),
        ("compiler_parameters.optimize_level", st.sampled_from(["O2", "O3"])),
    ]
)
_NODE = st.sampled_from(["conv_1", "/model.0/conv/Conv", "head/Gemm", "fc"])


@st.composite
def _changes(draw: st.DrawFn) -> list:
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["key", "node", "item", "rename"]))
        if kind == "key":
            key, values = draw(_KEYS)
            out.append(set_key(key, draw(values)))
        elif kind == "node":
            out.append(
                node_setting(
                    draw(_NODE),
                    on=draw(st.sampled_from([None, "CPU", "BPU"])),
                    input_type=draw(st.sampled_from([None, "int16"])),
                    output_type="int16",
                )
            )
        elif kind == "rename":
            key = draw(st.sampled_from([NODE_INFO, "calibration_parameters.run_on_cpu"]))
            old = draw(st.sampled_from(["conv_1", "head/Softmax_out", "/model.22/Sigmoid"]))
            out.append(rename_node(key, old, "renamed/Node"))
        else:
            item = draw(st.sampled_from(["asymmetric", "bias_correction"]))
            out.append(add_item("calibration_parameters.optimization", item))
    return out


@settings(max_examples=60, deadline=None)
@given(
    text=st.sampled_from([X5, X3, *(p.read_text() for p in sorted(INPUT_CONFIGS.glob("*.yaml")))]),
    changes=_changes(),
)
def test_any_changes_read_back_and_keep_comments(text: str, changes: list) -> None:
    result = apply_changes(text, changes)  # raises PatchError if it does not read back
    assert comments(result.text) == comments(text)
    kept = [line for line in text.splitlines() if line.strip().startswith("#")]
    assert all(line in result.text.splitlines() for line in kept)


def _config(tmp_path: Path, text: str):
    from ptqtui.inputs.config import load_config

    path = tmp_path / "mapper.yaml"
    path.write_text(text)
    return load_config(path)


REMEDY_CONFIG = """\
model_parameters:
  onnx_model: m.onnx
  march: bayes-e
calibration_parameters:
  cal_data_dir: ./cal   # 100 images
  calibration_type: max
  optimization: set_model_output_int8,asymmetric
"""


def test_a_remedy_patch_writes_every_flag_and_keeps_the_others(tmp_path: Path) -> None:
    """A sweep row's remedy (asymmetric and bias_correction on) is written with its flags;
    one that turns an item off keeps the user's other items."""
    from ptqtui.advise.patch import patch_remedy
    from ptqtui.quant.settings import settings_from_config
    from ptqtui.remedy import ConfigEdit, Remedy, SettingsDelta

    cfg = _config(tmp_path, REMEDY_CONFIG)
    base = settings_from_config(cfg)
    row = Remedy(settings=SettingsDelta("kl", per_channel=True, bias_correction=True))
    data = yaml.safe_load(patch_remedy(REMEDY_CONFIG, row, base, cfg).text)
    cp = data["calibration_parameters"]
    assert cp["calibration_type"] == "kl" and cp["per_channel"] is True
    assert cp["optimization"].split(",") == [
        "set_model_output_int8",
        "asymmetric",
        "bias_correction",
    ]
    off = Remedy(settings=SettingsDelta(set_model_output_int8=False, asymmetric=False))
    result = patch_remedy(REMEDY_CONFIG, off, base, cfg)
    assert "optimization" not in yaml.safe_load(result.text)["calibration_parameters"]
    assert "# 100 images" in result.text
    only_output = Remedy(settings=SettingsDelta(set_model_output_int8=False))
    cp = yaml.safe_load(patch_remedy(REMEDY_CONFIG, only_output, base, cfg).text)
    assert cp["calibration_parameters"]["optimization"] == "asymmetric"
    edit = Remedy(config=(ConfigEdit("calibration_parameters.calibration_type", "kl", "max"),))
    cp = yaml.safe_load(patch_remedy(REMEDY_CONFIG, edit, base, cfg).text)
    assert cp["calibration_parameters"]["calibration_type"] == "kl"


def test_nodes_go_to_run_on_cpu_where_the_march_has_no_node_info(tmp_path: Path) -> None:
    from ptqtui.advise.patch import patch_remedy
    from ptqtui.quant.settings import settings_from_config
    from ptqtui.remedy import NodeChange, Placement, Remedy, SettingsDelta

    text = REMEDY_CONFIG.replace("bayes-e", "bernoulli2")
    cfg = _config(tmp_path, text)
    cpu = Remedy(settings=SettingsDelta(nodes=(NodeChange("head/Gemm", Placement.CPU),)))
    data = yaml.safe_load(patch_remedy(text, cpu, settings_from_config(cfg), cfg).text)
    assert data["calibration_parameters"]["run_on_cpu"] == "head/Gemm"
    assert "node_info" not in data["model_parameters"]
