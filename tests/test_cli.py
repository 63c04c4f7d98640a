"""The command line as a user meets it: real processes, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ptqtui import __version__
from tests.prepared import prepared_diagnosis

CONFIGS = Path(__file__).parent / "inputs" / "configs"


def ptqtui(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ptqtui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_missing_model_is_exit_2_and_one_line(tmp_path):
    result = ptqtui("nonexistent.onnx", "--report", "text", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "nonexistent.onnx" in line]
    assert errors == ["ptqtui: nonexistent.onnx: no such file"]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_corrupt_yaml_is_exit_2_and_names_the_line(tmp_path):
    (tmp_path / "mapper.yaml").write_text("model_parameters:\n  onnx_model: [m.onnx\n")
    result = ptqtui("-c", "mapper.yaml", "--report", "text", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("ptqtui: mapper.yaml line ") and "invalid YAML" in line


def test_hb_compile_config_is_read_and_a_missing_model_said_plainly(tmp_path):
    (tmp_path / "mapper.yaml").write_text(
        "model_parameters:\n  onnx_model: m.onnx\n  march: nash-e\n  output_model_file_prefix: m\n"
    )
    result = ptqtui("-c", "mapper.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "ptqtui: m.onnx: no such file\n"


def test_debug_shows_the_traceback(tmp_path):
    result = ptqtui("nonexistent.onnx", "--debug", "--quiet", "--report", "json", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_version_and_usage():
    result = ptqtui("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"ptqtui {__version__}"
    result = ptqtui()
    assert result.returncode == 2 and "ptqtui demo" in result.stderr
    result = ptqtui("--bogus")
    assert result.returncode == 2 and "--bogus" in result.stderr


def test_bad_flag_values_are_usage_errors(tmp_path):
    result = ptqtui("m.onnx", "--mean", "1 2 x", cwd=tmp_path)
    assert result.returncode == 2 and "--mean" in result.stderr
    result = ptqtui("m.onnx", "--fail-on", "sometimes", cwd=tmp_path)
    assert result.returncode == 2


def test_report_over_an_input_is_refused(tmp_path):
    config = tmp_path / "mapper.yaml"
    config.write_text((CONFIGS / "nv12_from_rgb.yaml").read_text())
    before = config.read_bytes()
    result = ptqtui("-c", "mapper.yaml", "--report", "text", "-o", "mapper.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "never overwritten" in result.stderr
    assert config.read_bytes() == before


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(prepared_diagnosis().to_json()))
    return path


def test_view_prints_a_saved_diagnosis_when_not_a_terminal(saved):
    result = ptqtui("view", str(saved))
    assert result.returncode == 0
    assert "PTQ001" in result.stdout


def test_view_refuses_what_is_not_a_diagnosis(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"schema": "something/2"}')
    result = ptqtui("view", str(bad))
    assert result.returncode == 2 and "x.json" in result.stderr
    bad.write_text("{not json")
    result = ptqtui("view", str(bad))
    assert result.returncode == 2 and "x.json line 1" in result.stderr


def test_report_to_file_is_written_atomically(saved, tmp_path):
    out = tmp_path / "report.md"
    result = ptqtui("view", str(saved), "--report", "md", "-o", str(out))
    assert result.returncode == 0 and result.stdout == ""
    assert "PTQ001" in out.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert out.stat().st_mode & 0o044, "readable by others, like any file the user writes"


def test_diff_shows_fixed_findings_and_moved_metrics(tmp_path, saved):
    from dataclasses import replace

    d = prepared_diagnosis()
    q = d.analysis.quality
    nodes = tuple(
        replace(n, similarity=replace(n.similarity, cosine=0.9999)) if n.name == "head/Gemm" else n
        for n in d.analysis.nodes
    )
    after = replace(
        d,
        findings=d.findings[1:],
        analysis=replace(d.analysis, quality=replace(q, output_cosine=0.9950), nodes=nodes),
    )
    b = tmp_path / "after.json"
    b.write_text(json.dumps(after.to_json()))
    result = ptqtui("diff", str(saved), str(b))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1 fixed, 0 new" in out and "fixed [critical] PTQ001" in out
    assert "output cosine: 0.9871 -> 0.9950" in out
    assert "head/Gemm: 0.9865 -> 0.9999" in out
    result = ptqtui("diff", str(saved), str(saved), "--report", "json")
    data = json.loads(result.stdout)
    assert data["fixed"] == [] and data["new"] == [] and data["nodes"] == []


def test_write_config_never_over_the_users_config(tmp_path):
    config = tmp_path / "mapper.yaml"
    config.write_text((CONFIGS / "nv12_from_rgb.yaml").read_text())
    before = config.read_bytes()
    result = ptqtui("-c", "mapper.yaml", "--report", "text", "--write-config", "mapper.yaml",
                    cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "never overwritten" in result.stderr
    assert config.read_bytes() == before
    result = ptqtui("m.onnx", "--report", "text", "--write-config", "out.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "needs -c" in result.stderr
