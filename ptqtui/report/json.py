"""JSON report: the Diagnosis as `ptqtui.diagnosis/1`."""

from __future__ import annotations

import json
from typing import TextIO

from ptqtui.diagnosis import Diagnosis


def write_json(diagnosis: Diagnosis, out: TextIO) -> None:
    json.dump(diagnosis.to_json(), out, indent=2, ensure_ascii=False)
    out.write("\n")
