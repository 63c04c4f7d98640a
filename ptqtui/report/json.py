"""JSON report: the Diagnosis itself (`"schema": "ptqtui.diagnosis/2"`, docs/report-schema.md)."""

from __future__ import annotations

import json
from typing import TextIO

from ptqtui.diagnosis import Diagnosis


def write_json(diagnosis: Diagnosis, out: TextIO) -> None:
    json.dump(diagnosis.to_json(), out, indent=2, allow_nan=False, ensure_ascii=False)
    out.write("\n")
