"""The Diagnosis JSON is the interface between runs: it must read back exactly."""

from __future__ import annotations

import json
import math

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
