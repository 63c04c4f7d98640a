"""The bundled demo data: well-formed, loadable by the foundation, unchanged, small.

Fast: no training, no quantization, no torch. The mistakes in the scenarios are data for the
rules, so loading them must never raise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest

from ptqtui.demo import demo_dir, find_scenario, list_scenarios
from ptqtui.inputs.config import load_config
from ptqtui.inputs.data import load_eval_set
from ptqtui.inputs.resolve import load_inputs
from ptqtui.request import Request

DEMO = demo_dir()
SCENARIOS = DEMO / "scenarios"
INDEX = json.loads((SCENARIOS / "index.json").read_text(encoding="utf-8"))
NAMES = INDEX["order"]
CODES = {
    "good": set(),
    "bgr_swap": {"PTQ001"},
    "double_norm": {"PTQ002"},
    "skimage_range": {"PTQ003"},
    "tofile_dtype": {"PTQ101"},
    "tofile_layout": {"PTQ102"},
    "abnormal_images": {"PTQ103"},
    "few_images": {"PTQ104"},
    "per_tensor_loss": {"PTQ301"},
    "sensitive_tail": {"PTQ304"},
    "bad_config": {"PTQ201", "PTQ203", "PTQ205"},
    "bgr_no_eval": {"PTQ001"},
    "missing_norm": {"PTQ003"},
    "unit_nhwc": {"PTQ003", "PTQ102"},
    "nan_files": {"PTQ106"},
    "text_map": set(),  # the non-classifier scenario (demo_data/make_text_map.py)
}
WITHOUT_EVAL = {"bgr_no_eval"}  # expected.json "eval": false
SEVERITIES = ("info", "minor", "major", "critical")


def test_index_lists_every_scenario_once_and_a_default():
    assert sorted(NAMES) == sorted(CODES)
    assert len(NAMES) == len(set(NAMES))
    assert INDEX["default"] in NAMES
    folders = sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir())
    assert folders == sorted(NAMES)


@pytest.mark.parametrize("name", sorted(CODES))
def test_expected_json_is_well_formed(name):
    doc = json.loads((SCENARIOS / name / "expected.json").read_text(encoding="utf-8"))
    keys = {"title", "must_fire", "no_other_critical", "max_severity_otherwise"}
    assert set(doc) == (keys | {"eval"} if name in WITHOUT_EVAL else keys)
    assert doc.get("eval", True) is (name not in WITHOUT_EVAL)
    assert isinstance(doc["title"], str) and doc["title"]
    assert doc["no_other_critical"] is True
    codes = set()
    for item in doc["must_fire"]:
        assert set(item) == {"code", "min_severity"}
        assert item["min_severity"] in SEVERITIES
        codes.add(item["code"])
    assert CODES[name] <= codes
    if name == "good":
        assert doc["must_fire"] == []
        assert doc["max_severity_otherwise"] == "minor"
    else:
        assert doc["max_severity_otherwise"] is None


@pytest.mark.parametrize("name", sorted(set(CODES) - {"bad_config"}))
def test_config_has_no_problems(name):
    config = load_config(SCENARIOS / name / "config.yaml")
    assert config.problems == ()
    own = SCENARIOS / name / "model.onnx"  # text_map has its own (non-classifier) model
    model = own if own.is_file() else DEMO / "model.onnx"
    assert config.model_path is not None and config.model_path.resolve() == model
    assert config.march == "bernoulli2"
    [spec] = config.inputs
    assert spec.cal_data_dir is not None and spec.cal_data_dir.is_dir()


def test_bad_config_has_exactly_its_illegal_value():
    config = load_config(SCENARIOS / "bad_config" / "config.yaml")
    [problem] = config.problems
    assert problem.key == "compiler_parameters.compile_mode"
    assert problem.kind == "value"
    assert problem.line == config.line_of("compiler_parameters.compile_mode")
    # the other two mistakes are for the rules: a node name the model lacks, and
    # per_channel under calibration_type default
    nodes = {s.node for s in config.node_settings}
    assert "/head/softmax/SoftMax" in nodes
    assert config.calibration_type == "default" and config.per_channel


@pytest.mark.parametrize("name", NAMES)
def test_every_scenario_loads_through_the_foundation(name):
    scenario = find_scenario(name)
    inputs = load_inputs(Request(config=scenario.config, eval_dir=scenario.eval_dir))
    assert inputs.calibration is not None
    if name in WITHOUT_EVAL:
        assert inputs.eval_set is None
    elif name == "text_map":  # its own pages with mask labels
        assert inputs.eval_set is None
        assert inputs.task_labels is not None and len(inputs.task_labels) == 12
    else:
        assert inputs.eval_set is not None and len(inputs.eval_set) == 300
    assert [t.name for t in inputs.graph.inputs] == ["images"]
    if name == "tofile_dtype":  # float32 files declared uint8: every size is wrong
        assert len(inputs.calibration) == 0
        assert inputs.calibration.mismatches
        assert "float32 1x3x64x64" in inputs.calibration.mismatches[0].fits
        return
    assert not inputs.calibration.mismatches
    samples = list(inputs.calibration.iter_samples(limit=3))
    assert samples and samples[0].arrays["images"].shape == (1, 3, 64, 64)
    if name in ("unit_nhwc", "nan_files"):  # float32 files: 40 keep the folder small
        assert len(inputs.calibration) == 40
        return
    if name == "few_images":
        assert len(inputs.calibration) == 5
    elif name in ("double_norm", "skimage_range"):
        assert len(inputs.calibration) >= 30
        assert samples[0].arrays["images"].dtype.name == "float32"
    else:
        assert len(inputs.calibration) >= 100


def test_demo_index_functions():
    listed = dict(list_scenarios())
    assert list(listed) == NAMES
    assert listed[INDEX["default"]].endswith("(default)")
    default = find_scenario(None)
    assert default.name == INDEX["default"]
    assert default.config.exists()
    assert default.eval_dir == DEMO / "eval"


def test_eval_set_has_classes_that_differ_by_colour():
    classes = (DEMO / "classes.txt").read_text(encoding="utf-8").split()
    assert len(classes) >= 10
    eval_set = load_eval_set(DEMO / "eval")
    assert list(eval_set.classes) == classes
    assert {item.label for item in eval_set.items} == set(range(len(classes)))
    shapes = {name.split("_", 1)[1] for name in classes}
    for shape in shapes:  # several colours of the same shape
        assert sum(name.endswith(shape) for name in classes) >= 2


def test_model_follows_the_conventions():
    path = DEMO / "model.onnx"
    assert path.stat().st_size <= 2 * 1024 * 1024
    model = onnx.load(str(path))
    opset = {o.domain: o.version for o in model.opset_import}[""]
    assert 13 <= opset <= 17
    [inp] = model.graph.input
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "images" and dims[:2] == [1, 3] and dims[2] == dims[3] >= 64
    ops = [n.op_type for n in model.graph.node]
    assert ops[-1] == "Softmax"
    assert {"Conv", "Relu", "Add", "Concat", "GlobalAveragePool", "Gemm"} <= set(ops)
    assert any(a.name == "group" and a.i > 1 for n in model.graph.node for a in n.attribute)


def _manifest_files() -> list[Path]:
    roots = ("model.onnx", "classes.txt", "eval", "calibration", "scenarios")
    files = []
    for root in roots:
        path = DEMO / root
        if path.is_file():
            files.append(path)
        else:
            files.extend(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return files


def test_manifest_matches_the_files():
    recorded = {}
    for line in (DEMO / "MANIFEST.sha256").read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name] = digest
    actual = {
        p.relative_to(DEMO).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in _manifest_files()
    }
    assert sorted(actual) == sorted(recorded)
    changed = [name for name, digest in actual.items() if recorded[name] != digest]
    assert changed == []


def test_demo_data_is_small():
    total = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert total < 20 * 1024 * 1024
