"""Import direction and start-up cost: the core never loads Textual, nothing loads onnxruntime
until a simulation or a model run needs it."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import ptqtui.cli, ptqtui.diagnosis, ptqtui.report, ptqtui.check.registry
from ptqtui.check.registry import load_rules
load_rules()
print(",".join(m for m in ("textual", "onnxruntime", "torch") if m in sys.modules))
"""


def test_core_and_rules_load_neither_textual_nor_onnxruntime():
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_tui_module_does_not_load_onnxruntime():
    code = "import sys, ptqtui.tui.app; print('onnxruntime' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
