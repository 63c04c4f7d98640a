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
