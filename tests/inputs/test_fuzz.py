"""Random bytes and random YAML reach the loaders: only clean PtqInputErrors come out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptqtui.errors import PtqInputError
from ptqtui.inputs.config import load_config
from ptqtui.inputs.data import InputLayout, open_samples
from ptqtui.inputs.model import load_model

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GROUPS = ("model_parameters", "input_parameters", "calibration_parameters", "compiler_parameters")
KEYS = [
    "onnx_model",
    "march",
    "input_type_rt",
    "input_type_train",
    "input_layout_train",
    "input_shape",
    "norm_type",
    "mean_value",
    "scale_value",
    "cal_data_dir",
    "cal_data_type",
    "calibration_type",
    "max_percentile",
    "per_channel",
    "node_info",
    "run_on_cpu",
    "optimization",
    "compile_mode",
    "core_num",
    "input_name",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["rgb", "nv12", "1x3x224x224", "?x3x8x8", "a;b;c", "1 2 3", "kl", "max"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
configs = st.dictionaries(
    st.one_of(st.sampled_from(GROUPS), st.text(max_size=10)),
    st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values, max_size=8)),
    max_size=5,
)


def _check(load, path: Path) -> None:
    try:
        load(path)
    except PtqInputError as err:
        assert "\n" not in str(err)


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_as_config_model_and_yaml(data):
    with tempfile.TemporaryDirectory() as tmp:
        for name, load in (("m.yaml", load_config), ("m.onnx", load_model)):
            path = Path(tmp) / name
            path.write_bytes(data)
            _check(load, path)


@FUZZ
@given(doc=configs)
def test_random_yaml_documents_are_data_not_crashes(doc):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapper.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        _check(load_config, path)


@FUZZ
@given(files=st.lists(st.tuples(st.sampled_from([".bin", ".npy", ".png", ".jpg", ".txt"]),
                                st.binary(max_size=300)), max_size=5))  # fmt: skip
def test_random_calibration_files_never_crash_the_reader(files):
    layout = InputLayout("x", "uint8", (1, 3, 4, 4), "NCHW", "rgb")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (suffix, data) in enumerate(files):
            (Path(tmp) / f"{i}{suffix}").write_bytes(data)
        try:
            source = open_samples([Path(tmp)], [layout])
            for sample in source.iter_samples():
                assert isinstance(sample.arrays["x"], np.ndarray)
        except PtqInputError as err:
            assert "\n" not in str(err)
