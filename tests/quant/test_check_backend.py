"""--check-backend: onnxruntime's int8 kernels against the simulator, in the report."""

from __future__ import annotations

import json

import numpy as np
import onnx

from ptqtui.analysis.results import BackendCheck
from ptqtui.cli import main
from ptqtui.diagnosis import Diagnosis
from ptqtui.quant.faithful import cpu_has_vnni

from .factories import small_cnn


def _files(tmp):
    model = small_cnn()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    onnx.save(model, tmp / "m.onnx")
    rng = np.random.default_rng(0)
    (tmp / "cal").mkdir()
    for i in range(10):
        np.save(tmp / "cal" / f"{i}.npy", rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32))
    return [
        str(tmp / "m.onnx"),
        "--cal-dir",
        str(tmp / "cal"),
        "--input-type-train",
        "featuremap",
        "--layout",
        "NCHW",
        "--cal-data-type",
        "float32",
        "--quiet",
        "--fail-on",
        "never",
    ]


def test_check_backend_adds_the_section_and_the_record(tmp_path, capsys):
    args = _files(tmp_path)
    assert main([*args, "--report", "json", "--check-backend"]) == 0
    d = Diagnosis.from_json(json.loads(capsys.readouterr().out))
    b = d.analysis.backend
    assert isinstance(b, BackendCheck) and b.samples > 0
    assert b.cosine_reduce_range >= 0.999  # the simulator is what onnxruntime computes
    assert b.cpu_vnni == cpu_has_vnni()
    assert main([*args, "--report", "text", "--check-backend"]) == 0
    assert "Backend check (onnxruntime int8 kernels)" in capsys.readouterr().out


def test_without_the_flag_there_is_no_backend_section(tmp_path, capsys):
    assert main([*_files(tmp_path), "--report", "text"]) == 0
    out = capsys.readouterr().out
    assert "Backend check" not in out


def test_the_warning_needs_a_loss_beyond_the_threshold():
    from ptqtui.analysis.results import Analysis
    from ptqtui.report.document import Para, _backend

    quiet = _backend(Analysis("int8", backend=BackendCheck(0.9999, 0.9998, 4, True)))
    loud = _backend(Analysis("int8", backend=BackendCheck(0.9999, 0.95, 4, False)))
    assert not any(isinstance(b, Para) for b in quiet)
    assert any(isinstance(b, Para) and "saturate" in b.text for b in loud)
