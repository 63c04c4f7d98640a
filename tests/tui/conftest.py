"""Apps over the prepared Diagnosis: no onnxruntime, no clocks."""

from __future__ import annotations

import dataclasses

import pytest

from ptqtui.analysis.results import Measure, SweepRow
from ptqtui.quant.scheme import QuantSettings
from ptqtui.remedy import DType, Remedy, settings_delta
from ptqtui.request import Request
from ptqtui.tui.app import PtqApp, make_app, make_viewer
from tests.prepared import prepared_diagnosis

CONFIGURED = QuantSettings(calibration_type="default")  # the prepared diagnosis' config
_MAX = QuantSettings(calibration_type="max")
# each prepared sweep row's settings, as the sweep measured them (analysis/sweep.py)
ROW_SETTINGS = {
    "default": CONFIGURED,
    "mix": QuantSettings(calibration_type="mix"),
    "kl": QuantSettings(calibration_type="kl"),
    **{
        f"max, max_percentile {p:g}": dataclasses.replace(_MAX, max_percentile=p)
        for p in (0.99999, 0.99995, 0.9999, 0.9995, 0.999)
    },
    "max 0.9999 + per_channel": QuantSettings("max", 0.9999, per_channel=True),
    "max 0.9999 + per_channel + asymmetric": QuantSettings(
        "max", 0.9999, per_channel=True, asymmetric=True
    ),
    "max 0.9999 + per_channel + bias_correction": QuantSettings(
        "max", 0.9999, per_channel=True, bias_correction=True
    ),
}


@dataclasses.dataclass
class FakeWhatIf:
    """Records the remedies it is asked to measure; each node moved to int16 buys 0.001."""

    asked: list[Remedy] = dataclasses.field(default_factory=list)

    def measure_against(self, remedy: Remedy, against: Remedy):
        return self.measure(remedy)

    def measure_race(self, remedies, against: Remedy):
        return [self.measure(r) for r in remedies]

    def measure(self, remedy: Remedy, *, cancel=None) -> Measure:
        self.asked.append(remedy)
        nodes = remedy.settings.nodes if remedy.settings else ()
        int16 = sum(1 for n in nodes if n.dtype is DType.INT16)
        return Measure(round(0.9871 + 0.001 * int16, 4), 0.9)

    def settings_asked(self) -> list[QuantSettings]:
        """The settings each measured remedy amounts to, from the configured ones."""
        return [r.settings.apply(CONFIGURED) if r.settings else CONFIGURED for r in self.asked]


@dataclasses.dataclass(frozen=True)
class Run:
    """What a diagnose that hands over its what-if service returns (a DiagnosisRun)."""

    diagnosis: object
    whatif: FakeWhatIf | None


def whatif_diagnosis(*, bias_row: bool = True):
    """The prepared Diagnosis whose sweep rows carry their remedies (as sweep.py makes them),
    plus a bias_correction row (not in the snapshots, whose sweep is the prepared one)."""
    d = prepared_diagnosis()
    analysis = d.analysis
    assert analysis is not None
    last = analysis.sweep[-1]
    extra = dataclasses.replace(
        last,
        label="max 0.9999 + per_channel + bias_correction",
        settings=(*last.settings[:3], ("optimization", "bias_correction")),
        cosine=0.9961,
    )
    sweep = (*analysis.sweep, extra) if bias_row else analysis.sweep
    rows = tuple(_with_remedy(r) for r in sweep)
    return dataclasses.replace(d, analysis=dataclasses.replace(analysis, sweep=rows))


def _with_remedy(row: SweepRow) -> SweepRow:
    delta = settings_delta(CONFIGURED, ROW_SETTINGS[row.label])
    return dataclasses.replace(row, remedy=Remedy(settings=delta))


@pytest.fixture
def whatif() -> FakeWhatIf:
    return FakeWhatIf()


@pytest.fixture
def live_app(tmp_path, whatif) -> PtqApp:
    return make_app(
        Request(title="demo: bgr_swap"),
        diagnose=lambda *a, **k: Run(whatif_diagnosis(), whatif),
        export_dir=tmp_path,
    )


@pytest.fixture
def viewer(tmp_path) -> PtqApp:
    return make_viewer(whatif_diagnosis(), export_dir=tmp_path)


def bare_diagnosis():
    """No simulator results and no plan: what the inputs and config checks alone give."""
    return dataclasses.replace(prepared_diagnosis(), analysis=None, plan=None)


def clean_diagnosis():
    """Nothing found."""
    return dataclasses.replace(prepared_diagnosis(), findings=())
