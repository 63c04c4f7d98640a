"""The Plan screen's what-ifs as typed remedies, the service that measures them, and the
config they amount to.

A what-if is a `Remedy` (`ptqtui.remedy`): a sweep row's `SettingsDelta` (its calibration)
plus `NodeChange`s (a node to the CPU, or to int16; never both). The diagnosis hands over a
`WhatIfService` with the Diagnosis (`DiagnosisReady`); the config diff goes through the
advisor's patcher. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ptqtui.policy import NO_INT16_MARCH
from ptqtui.remedy import DType, InputChange, NodeChange, Placement, Remedy, SettingsDelta

if TYPE_CHECKING:
    from ptqtui.analysis.results import Measure, NodeRow, SweepRow
    from ptqtui.diagnosis import Diagnosis

# config keys naming files or folders, read relative to the config's folder (inputs.config)
PATH_KEYS = (
    "model_parameters.onnx_model",
    "model_parameters.caffe_model",
    "model_parameters.prototxt",
    "model_parameters.working_dir",
    "calibration_parameters.cal_data_dir",
    "custom_op.custom_op_dir",
)
LIST_PATH_KEYS = ("calibration_parameters.cal_data_dir",)  # ';' between the inputs' folders


class WhatIfService(Protocol):
    """What the TUI needs of the core's what-if service (`analysis.whatif.WhatIf`, handed
    over with the diagnosis by `diagnosis.run_diagnosis`)."""

    def measure(self, remedy: Remedy, *, cancel: threading.Event | None = None) -> Measure:
        """The model with `remedy` applied to the configured state, measured; `cancel` stops
        a superseded measurement (it raises Cancelled)."""
        ...


def plan_data_fixes(diagnosis: Diagnosis) -> tuple[InputChange, ...]:
    """The data fixes the plan's pipeline steps tried: a what-if is measured on the data as
    the plan fixes it, so its figures continue the plan's (and answer "and then?")."""
    plan = diagnosis.plan
    if plan is None:
        return ()
    fixes: list[InputChange] = []
    for step in plan.steps:
        if step.tried and step.remedy is not None and step.stage == "pipeline":
            fixes += [c for c in step.remedy.inputs if c not in fixes]
    return tuple(fixes)


class Toggle(enum.Enum):
    """A what-if key on a node."""

    INT16 = "int16"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class NodeState:
    """Where a node runs and in which dtype (the dtype of a CPU node does not matter)."""

    placement: Placement
    dtype: DType

    @classmethod
    def of(cls, row: NodeRow) -> NodeState:
        return cls(Placement(row.placement), DType(row.dtype))

    def label(self) -> str:
        if self.placement is Placement.CPU:
            return "CPU"
        return self.dtype.value

    def same(self, other: NodeState) -> bool:
        if self.placement is not other.placement:
            return False
        return self.placement is Placement.CPU or self.dtype is other.dtype


@dataclass(frozen=True, slots=True)
class Choices:
    """A sweep row's calibration plus node changes, relative to the config as given.

    `row` indexes the diagnosis' sweep (None: the calibration as configured); `calibration`
    is that row's settings delta; `nodes` are sorted by node name.
    """

    row: int | None = None
    calibration: SettingsDelta | None = None
    nodes: tuple[NodeChange, ...] = ()

    def remedy(self) -> Remedy:
        """The remedy these choices amount to (what is measured and patched)."""
        base = self.calibration or SettingsDelta()
        delta = dataclasses.replace(base, nodes=self.nodes)
        return Remedy(settings=None if delta.is_empty() else delta)

    def is_empty(self) -> bool:
        return self.remedy().is_empty()

    def with_row(self, row: int | None, calibration: SettingsDelta | None) -> Choices:
        """These node changes with another calibration (its node changes dropped)."""
        if calibration is not None:
            calibration = dataclasses.replace(calibration, nodes=())
        return Choices(row, calibration, self.nodes)

    def state(self, row: NodeRow) -> NodeState:
        """The node's state under these choices."""
        base = NodeState.of(row)
        change = next((c for c in self.nodes if c.node == row.name), None)
        if change is None:
            return base
        placement = change.placement or base.placement
        if change.dtype is not None:
            dtype = change.dtype
        elif placement is base.placement:
            dtype = base.dtype
        else:
            dtype = DType.INT8
        return NodeState(placement, dtype)

    def toggled(self, row: NodeRow, what: Toggle) -> Choices:
        """Flip the node in or out of int16 (or the CPU); int16 and CPU exclude each other."""
        base = NodeState.of(row)
        now = self.state(row)
        bpu_base = base.placement is Placement.BPU and base.dtype is not DType.INT16
        if what is Toggle.INT16:
            on = now.placement is Placement.BPU and now.dtype is DType.INT16
            if not on:
                target = NodeState(Placement.BPU, DType.INT16)
            elif bpu_base or base.placement is Placement.CPU:
                target = base
            else:
                target = NodeState(Placement.BPU, DType.INT8)
        elif now.placement is not Placement.CPU:
            target = NodeState(Placement.CPU, DType.FLOAT)
        elif base.placement is Placement.BPU:
            target = base
        else:
            target = NodeState(Placement.BPU, DType.INT8)
        others = tuple(c for c in self.nodes if c.node != row.name)
        change = _change(row.name, base, target)
        nodes = others + ((change,) if change is not None else ())
        return Choices(self.row, self.calibration, tuple(sorted(nodes, key=lambda c: c.node)))


def _change(node: str, base: NodeState, target: NodeState) -> NodeChange | None:
    """The NodeChange from `base` to `target` (None when they are the same)."""
    if target.same(base):
        return None
    placement = target.placement if target.placement is not base.placement else None
    dtype = None
    if target.placement is Placement.BPU:
        if base.placement is Placement.CPU:  # back on the BPU: int8 unless asked otherwise
            dtype = target.dtype if target.dtype is DType.INT16 else None
        elif target.dtype is not base.dtype:
            dtype = target.dtype
    return NodeChange(node, placement, dtype)


def row_calibration(row: SweepRow) -> SettingsDelta | None:
    """A sweep row's calibration as a settings delta (None: the row carries no remedy)."""
    if row.remedy is None:
        return None
    return row.remedy.settings or SettingsDelta()


def int16_allowed(march: str | None) -> bool:
    """Whether the march has int16 node types (unknown march: assume it does)."""
    return march not in NO_INT16_MARCH


# ---------------------------------------------------------------------- the config


def yaml_fragment(remedy: Remedy) -> str:
    """The YAML keys a remedy sets, as a fragment to merge by hand (no config file here)."""
    delta = remedy.settings
    if delta is None or delta.is_empty():
        return ""
    lines: list[str] = []
    cal: list[str] = []
    if delta.calibration_type is not None:
        cal.append(f"  calibration_type: {delta.calibration_type}")
    if delta.max_percentile is not None and delta.max_percentile < 1.0:
        cal.append(f"  max_percentile: {delta.max_percentile:g}")
    if delta.per_channel is not None:
        cal.append(f"  per_channel: {'true' if delta.per_channel else 'false'}")
    flags = [f for f in ("asymmetric", "bias_correction") if getattr(delta, f)]
    if flags:
        cal.append(f"  optimization: {','.join(flags)}")
    if cal:
        lines += ["calibration_parameters:", *cal]
    if delta.nodes:
        lines += ["model_parameters:", "  node_info:"]
        for c in delta.nodes:
            # 'ON' quoted: bare ON is YAML 1.1's true (hb_mapper's own examples quote it)
            fields = [f"'ON': {c.placement.value}"] if c.placement is not None else []
            if c.dtype is not None:  # int16 is the node's inputs and output (NodeChange)
                fields.append(f"InputType: {c.dtype.value}")
                if c.dtype is DType.INT16:
                    fields.append("OutputType: int16")
            lines.append(f"    {c.node}: {{{', '.join(fields)}}}")
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class ConfigPatch:
    """The user's config, as the diagnosis read it: patches remedies into its text."""

    path: Path
    text: str
    march: str | None
    _state: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    def patch(self, remedy: Remedy) -> tuple[str, str] | None:
        """(unified diff, patched YAML) through the advisor's patcher (comments and order
        kept; run_on_cpu where the march has no node_info); None when it cannot apply it
        safely (the screen then shows the plain YAML fragment)."""
        from ptqtui.advise.patch import PatchError, patch_remedy
        from ptqtui.errors import PtqInputError

        if remedy.is_empty():
            return None
        try:
            config, base = self._loaded()
            result = patch_remedy(self.text, remedy, base, config, name=self.path.name)
        except (PatchError, PtqInputError, ValueError):
            return None
        return result.diff, result.text

    def _loaded(self) -> tuple[Any, Any]:
        if "config" not in self._state:
            from ptqtui.inputs.config import load_config
            from ptqtui.quant.settings import settings_from_config

            config = load_config(self.path)
            self._state["config"] = config
            self._state["settings"] = settings_from_config(config)
        return self._state["config"], self._state["settings"]

    def relocated(self, text: str, to_dir: Path) -> str:
        """`text` (this config, patched) with its relative paths rewritten to be read from
        `to_dir`, so a copy saved there runs from where it is."""
        return relocate_paths(text, self.path.parent, to_dir, name=self.path.name)


def relocate_paths(text: str, from_dir: Path, to_dir: Path, *, name: str = "config.yaml") -> str:
    """The config text with every relative path key re-expressed from `to_dir` (the folder a
    copy is saved in) instead of `from_dir` (the original's); absolute paths are kept."""
    import yaml

    from ptqtui.advise.patch import apply_changes, set_key

    if from_dir.resolve() == to_dir.resolve():
        return text
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return text
    changes = []
    for key in PATH_KEYS:
        group, _, field = key.partition(".")
        section = data.get(group)
        value = section.get(field) if isinstance(section, dict) else None
        if not isinstance(value, str) or not value.strip():
            continue
        parts = value.split(";") if key in LIST_PATH_KEYS else [value]
        moved = [_moved(p.strip(), from_dir, to_dir) for p in parts if p.strip()]
        new = ";".join(moved)
        if new != value:
            changes.append(set_key(key, new))
    if not changes:
        return text
    return apply_changes(text, changes, name=name).text


def _moved(path: str, from_dir: Path, to_dir: Path) -> str:
    """`path` (relative to `from_dir`) relative to `to_dir`; absolute when the two folders
    share nothing but the root (a '../../..' climb to / reads worse than the path itself)."""
    if os.path.isabs(path) or path.startswith("~"):
        return path
    target = os.path.normpath(from_dir.resolve() / path)
    here = str(to_dir.resolve())
    if os.path.commonpath([target, here]) == os.path.dirname(os.sep):
        return target
    return os.path.relpath(target, here)


def config_patch(diagnosis: Diagnosis) -> ConfigPatch | None:
    """The diagnosed config, when it is still here and unchanged (same sha256)."""
    import hashlib

    ref = next((f for f in diagnosis.files if f.role == "config"), None)
    if ref is None or ref.sha256 is None:
        return None
    path = Path(ref.path)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(raw).hexdigest() != ref.sha256:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return ConfigPatch(path, text, _march(path))


def _march(path: Path) -> str | None:
    from ptqtui.errors import PtqInputError
    from ptqtui.inputs.config import load_config

    try:
        march = load_config(path).get("model_parameters.march")
    except (PtqInputError, OSError, ValueError):
        return None
    return march if isinstance(march, str) else None
