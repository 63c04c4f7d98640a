"""The Diagnosis JSON is the interface between runs: it must read back exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ptqtui.diagnosis import SCHEMA, Diagnosis
from tests.prepared import prepared_diagnosis


def test_json_round_trips_exactly():
    d = prepared_diagnosis()
    text = json.dumps(d.to_json())
    back = Diagnosis.from_json(json.loads(text))
    assert back == d
    assert json.loads(text)["schema"] == SCHEMA


def test_nan_survives_as_null():
    d = prepared_diagnosis()
    q = d.analysis.quality
    from dataclasses import replace

    nan_d = replace(d, analysis=replace(d.analysis, quality=replace(q, output_cosine=math.nan)))
    data = json.loads(json.dumps(nan_d.to_json(), allow_nan=False))
    assert data["analysis"]["quality"]["output_cosine"] is None
    assert math.isnan(Diagnosis.from_json(data).analysis.quality.output_cosine)


@pytest.mark.parametrize(
    "data",
    [{"schema": "other/1"}, [], {"schema": SCHEMA}, {"schema": SCHEMA, "findings": 3}],
)
def test_foreign_documents_are_refused(data):
    with pytest.raises(ValueError):
        Diagnosis.from_json(data)


def test_every_field_is_documented_in_the_schema_doc():
    import dataclasses
    import typing
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "report-schema.md").read_text()
    seen: set[type] = set()

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        name = cls.__name__
        assert f"### {name}" in doc or f"(`{name}`)" in doc, f"{name} has no section"
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            assert f"`{f.name}`" in doc, f"{cls.__name__}.{f.name} is not documented"
            stack = [hints[f.name]]
            while stack:
                t = stack.pop()
                stack.extend(typing.get_args(t))
                if dataclasses.is_dataclass(t):
                    walk(t)

    walk(Diagnosis)


V1 = Path(__file__).parent / "report" / "fixtures" / "diagnosis-v1.json"


def test_a_version_1_document_still_reads():
    """A /1 report (the prepared one as main wrote it before remedies): old fields such as
    yaml_change are dropped, remedies are absent, everything else reads back."""
    data = json.loads(V1.read_text(encoding="utf-8"))
    assert data["schema"] == "ptqtui.diagnosis/1"
    assert any(f.get("yaml_change") for f in data["findings"])
    d = Diagnosis.from_json(data)
    assert [f.code for f in d.findings] == [f["code"] for f in data["findings"]]
    assert all(f.remedy is None for f in d.findings)
    assert d.plan is not None and len(d.plan.steps) == len(data["plan"]["steps"])
    assert d.to_json()["schema"] == SCHEMA == "ptqtui.diagnosis/2"


def test_a_version_1_document_opens_in_view(capsys):
    from ptqtui.cli import main

    code = main(["view", str(V1), "--report", "text"])
    out = capsys.readouterr().out
    assert code == 0 and "PTQ001" in out and "demo: bgr_swap" in out


def test_remedies_round_trip_with_every_part():
    from dataclasses import replace

    from ptqtui.remedy import (
        ConfigEdit,
        DType,
        InputChange,
        InputFix,
        NodeChange,
        Placement,
        Remedy,
        SettingsDelta,
    )

    remedy = Remedy(
        config=(
            ConfigEdit("input_parameters.mean_value", (123.675, 116.28, 103.53), (1.0, 2.0), 7),
            ConfigEdit("calibration_parameters.per_channel", old=True, remove=True),
            ConfigEdit("model_parameters.node_info", node="a/Conv", fields=(("ON", "BPU"),)),
            ConfigEdit("calibration_parameters.run_on_cpu", 3, rename=True, node="x"),
        ),
        inputs=(InputChange(InputFix.DROP_SAMPLES, "images", ("s001.bin", "s002.bin")),),
        settings=SettingsDelta(
            calibration_type="max",
            max_percentile=0.9999,
            nodes=(NodeChange("a/Conv", Placement.CPU), NodeChange("b/Gemm", dtype=DType.INT16)),
            set_model_output_int8=False,
        ),
    )
    d = prepared_diagnosis()
    d = replace(d, findings=(replace(d.findings[0], remedy=remedy), *d.findings[1:]))
    back = Diagnosis.from_json(json.loads(json.dumps(d.to_json())))
    assert back == d
    edit = back.findings[0].remedy.config[0]
    assert isinstance(edit.new, tuple) and isinstance(edit.new[0], float)
    assert back.findings[0].remedy.config[1].old is True
    assert back.findings[0].remedy.config[3].new == 3
