"""Apps over the prepared Diagnosis: no onnxruntime, no clocks."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from ptqtui.advise.results import Measure
from ptqtui.request import Request
from ptqtui.tui.app import PtqApp, make_app, make_viewer
from ptqtui.tui.whatif import Choices
from tests.prepared import prepared_diagnosis


def fake_remeasure(choices: Choices, cancel: threading.Event) -> Measure:
    """Each node moved to int16 buys 0.001 cosine; enough to see the numbers move."""
    return Measure(round(0.9871 + 0.001 * len(choices.int16), 4), 0.9)


@pytest.fixture
def live_app(tmp_path) -> PtqApp:
    return make_app(
        Request(title="demo: bgr_swap"),
        diagnose=lambda *a, **k: prepared_diagnosis(),
        remeasure=fake_remeasure,
        export_dir=tmp_path,
    )


@pytest.fixture
def viewer(tmp_path) -> PtqApp:
    return make_viewer(prepared_diagnosis(), export_dir=tmp_path)


def bare_diagnosis():
    """No simulator results and no plan: what the inputs and config checks alone give."""
    return dataclasses.replace(prepared_diagnosis(), analysis=None, plan=None)


def clean_diagnosis():
    """Nothing found."""
    return dataclasses.replace(prepared_diagnosis(), findings=())
