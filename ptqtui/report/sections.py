"""The report's content as plain rows, shared by every writer so all formats say the same."""

from __future__ import annotations

from dataclasses import dataclass

from ptqtui.check.findings import Severity
from ptqtui.diagnosis import Diagnosis


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    rows: tuple[tuple[str, str], ...] = ()  # label, value
    lines: tuple[str, ...] = ()  # free lines


def sections(d: Diagnosis) -> list[Section]:
    out = [
        Section(
            "Inputs",
            tuple((f.role, f.path + (f" ({f.detail})" if f.detail else "")) for f in d.files),
        )
    ]
    m = d.model
    rows = [
        ("model", f"{m.name}, opset {m.opset}, {m.nodes} nodes ({m.quantized_nodes} quantized)"),
        ("ops", ", ".join(f"{op} {n}" for op, n in m.op_counts[:8])),
        ("outputs", ", ".join(m.outputs)),
    ]
    for i in m.inputs:
        norm = i.norm_type or "no config"
        if i.mean is not None or i.scale is not None:
            mean = " ".join(f"{v:g}" for v in i.mean or ())
            scale = " ".join(f"{v:g}" for v in i.scale or ())
            norm += f" (mean {mean or '-'}; scale {scale or '-'})"
        rows.append(
            (
                f"input {i.name}",
                f"{i.shape} {i.dtype} {i.layout or '?'}; train {i.type_train or '?'}, "
                f"runtime {i.type_rt or '?'}; {norm}; calibration files {i.cal_dtype}",
            )
        )
    for n in m.normalisation:
        rows.append(("in-model normalisation", n))
    out.append(Section("Model", tuple(rows)))
    for label, data in (("Calibration data", d.calibration), ("Evaluation data", d.evaluation)):
        if data is None:
            continue
        rows = [
            ("directory", data.directory),
            ("samples", f"{data.samples} ({', '.join(data.kinds)})"),
        ]
        rows += [("size mismatch", s) for s in data.size_mismatches]
        rows += [("skipped", s) for s in data.skipped]
        out.append(Section(label, tuple(rows)))
    findings = sorted(d.findings, key=lambda f: (-f.severity.rank, f.code))
    lines = []
    for f in findings:
        lines.append(f"[{f.severity.value}] {f.code} {f.message}")
        for e in f.evidence:
            where = f" ({e.where})" if e.where else ""
            lines.append(f"    {e.what}: {e.observed}{where}")
        if f.fix:
            lines.append(f"    fix: {f.fix}")
    counts = {s: sum(1 for f in d.findings if f.severity is s) for s in Severity}
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "none"
    out.append(Section(f"Findings ({summary})", (), tuple(lines) or ("No findings.",)))
    if d.skipped:
        out.append(Section("Skipped", tuple((s.what, s.reason) for s in d.skipped)))
    if d.notes:
        out.append(Section("Notes", (), d.notes))
    out.append(Section("Run", (("ptqtui", d.version), ("seed", str(d.seed)))))
    return out
