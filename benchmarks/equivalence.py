"""What a fix gives the model, measured on a corpus case: for scoring plants that no rule can
tell apart (two fixes that give the model the same input) or that have no effect at all.

Both questions are decided on arrays, never on names: the model-ready input after a fix (the
probe's variant that the fix makes, through the case's own preprocessing) against the input
the training pipeline gives (the `correct` case of the same model, sample by sample), and the
float model's outputs with and without a plant undone.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

SAMPLES = 4  # the first samples of a case: enough to compare arrays, cheap to run
SAME_INPUT = 0.01  # RMS difference / RMS of the training input: 1 % is the same input


@cache
def _context(case_dir: Path):  # -> Context
    from ptqtui.check.context import Context
    from ptqtui.inputs.resolve import load_inputs
    from ptqtui.request import Request

    return Context.from_inputs(load_inputs(Request(config=case_dir / "config.yaml", quiet=True)))


def _variant_for(ctx, fixes: frozenset[str]) -> tuple[object, str] | None:
    """(preprocessor, variant) whose data fixes are exactly `fixes` (InputFix values)."""
    from ptqtui.check.facts.probe import VARIANT_FIXES, variants_for

    pre = ctx.preprocessors[0]
    variants = variants_for(ctx, pre)
    layout = ctx.spec_of(pre.input_name).layout_train
    for name in variants:
        made = VARIANT_FIXES.get(name, ())
        probe_fixes = {f.value for f in made}
        from ptqtui.check.facts.probe import LAYOUT_VARIANTS

        if name in LAYOUT_VARIANTS:
            probe_fixes.add("read-nchw" if layout == "NHWC" else "read-nhwc")
        if probe_fixes == set(fixes):
            return pre, name
    return None


@cache
def model_ready(case_dir: Path, fixes: frozenset[str]) -> np.ndarray | None:
    """The first samples of a case as the model sees them after `fixes` (None: the probe has
    no variant making exactly those fixes)."""
    from ptqtui.check.facts.probe import variants_for
    from ptqtui.check.facts.samples import read_samples

    ctx = _context(case_dir)
    found = _variant_for(ctx, fixes)
    if found is None:
        return None
    pre, name = found
    make = variants_for(ctx, pre)[name]
    source = ctx.calibration
    count = min(SAMPLES, len(source))
    return np.stack(
        [make(s.arrays[pre.input_name]) for s in read_samples(source, list(range(count)))]
    )


def training_input(case_dir: Path) -> np.ndarray | None:
    """The same samples as the training pipeline gives them (the model's `correct` case)."""
    correct = case_dir.parent / "correct"
    if not (correct / "config.yaml").exists():
        return None
    return model_ready(correct, frozenset())


def gives_training_input(case_dir: Path, fixes: frozenset[str]) -> bool:
    """Whether `fixes` give the model, within SAME_INPUT, the input the training gives."""
    error = relative_error(case_dir, fixes)
    return error is not None and error <= SAME_INPUT


def relative_error(case_dir: Path, fixes: frozenset[str]) -> float | None:
    """RMS difference of `fixes`' model-ready input from the training's, relative."""
    truth = training_input(case_dir)
    fixed = model_ready(case_dir, fixes)
    if truth is None or fixed is None:
        return None
    n = min(len(truth), len(fixed))
    a, b = truth[:n].astype(np.float64), fixed[:n].astype(np.float64)
    if a.shape != b.shape:
        return None
    return float(np.sqrt(np.mean((a - b) ** 2)) / (np.sqrt(np.mean(a * a)) or 1.0))


@cache
def has_effect(case_dir: Path, fix: str) -> bool:
    """Whether undoing the plant changes the float model's outputs on the first samples (a
    channel swap of grey crops, R = G = B, changes nothing: no effect to find)."""
    ctx = _context(case_dir)
    given = model_ready(case_dir, frozenset())
    fixed = model_ready(case_dir, frozenset({fix}))
    if given is None or fixed is None:
        return True  # cannot tell: counted as a plant to find
    name = ctx.preprocessors[0].input_name
    for a, b in zip(given, fixed, strict=True):
        out_a = ctx.float_model.run({name: a})
        out_b = ctx.float_model.run({name: b})
        if any(not np.array_equal(x, y) for x, y in zip(out_a, out_b, strict=True)):
            return True
    return False
