"""One home for the policies: every threshold and cut-off that decides something, named, with
the reference line or the measurement it comes from.

Rules and analyses keep constants that only describe their own signal (a histogram's bin
count); a number that two modules would otherwise both write lives here.
"""

from __future__ import annotations

import enum

# --- what "good enough" means -------------------------------------------------------------
TARGET_COSINE = 0.99  # output cosine: "quantization is normal" (hb_mapper docs, reference §3)
OBVIOUS_LOSS_COSINE = 0.8  # output cosine below this: "obvious loss" (hb_mapper docs, ref. §3)
SENSITIVE_COSINE = 0.999  # the converter's own threshold for a sensitive node (mix, debugger)
# an output whose cosine is below this carries nothing of the float output (a public YOLOv8
# conversion log shows a Sigmoid output at 0.00002): collapsed, not merely degraded
COLLAPSED_COSINE = 0.1
MIN_GAIN = 2e-4  # cosine gains below this are not worth a change, whatever the noise says
# task metric gains (agreement or the labelled metric, 0..1) below this are not worth a change
# either: half a point, a third of the small-loss band (MEDIUM_LOSS_POINTS, reference §1)
MIN_TASK_GAIN = 0.005

# --- the loss bands of the reference's triage flow (accuracy points of the task metric) ----
LARGE_LOSS_POINTS = 4.0  # "> 4 %": a configuration or data mistake (reference §1)
MEDIUM_LOSS_POINTS = 1.5  # "1.5 % - 3 %" (the guide's small-loss bucket; 3-4 % read as medium)
# Without a task metric the band comes from the output cosine alone (a proxy, ref. §3):
LARGE_LOSS_COSINE = TARGET_COSINE  # below "normal": treated as large
MEDIUM_LOSS_COSINE = SENSITIVE_COSINE  # below the converter's sensitivity line: medium


class LossBand(str, enum.Enum):
    """The reference's loss bands; the plan's route depends on them. A member equals, hashes
    and prints as its value, so code written against the old strings keeps working."""

    LARGE = "large"  # > 4 points
    MEDIUM = "medium"  # 1.5-4 points
    SMALL = "small"  # < 1.5 points

    def __str__(self) -> str:
        return str(self.value)

    @property
    def span(self) -> str:
        """The band's range in accuracy points, as the reference writes it."""
        return _BAND_SPANS[self]


_BAND_SPANS = {
    LossBand.LARGE: f"> {LARGE_LOSS_POINTS:g} points",
    LossBand.MEDIUM: f"{MEDIUM_LOSS_POINTS:g}-{LARGE_LOSS_POINTS:g} points",
    LossBand.SMALL: f"< {MEDIUM_LOSS_POINTS:g} points",
}


# --- the calibration tuning order of the reference (§2) ------------------------------------
PERCENTILES = (0.99999, 0.99995, 0.9999, 0.9995, 0.999)  # reference §2, in its order

# --- grading a measured gain (rules PTQ301-306, the plan's steps) -------------------------
# An output cosine gain (or one node's loss) this large is graded the 1.5-4 % kind: the rules'
# own judgement (PTQ301-306 wrote it four times), not yet measured against the loss bands.
MAJOR_COSINE_GAIN = 0.01
MAJOR_POINTS = MEDIUM_LOSS_POINTS  # a gain of this many accuracy points is major

# --- what the hardware offers ---------------------------------------------------------------
NO_INT16_MARCH = ("bernoulli2",)  # X3: node_info int16 is not available (PTQ303/304, plan.py)

# --- the backend check (--check-backend) ---------------------------------------------------
# Output cosine lost to onnxruntime's kernels alone (8-bit vs 7-bit weights, simulator vs
# onnxruntime) above which the report warns. Measured on a CPU with VNNI, where nothing
# saturates: up to 0.001 (EfficientNet-Lite1, per-tensor weights; benchmarks/README.md,
# faithfulness), so the warning starts well above that floor.
BACKEND_SATURATION_COSINE = 5e-3

# --- sequential measurement of the plan's candidates (issue 17) ----------------------------
# A candidate's task agreement is measured SEQUENTIAL_STEP samples at a time, paired with the
# state it would replace on the same samples; it stops once its gain over that state is below
# MIN_TASK_GAIN beyond SEQUENTIAL_Z standard errors of the paired difference (one-sided,
# 99.5 %), or (the plan's precision rounds) it is behind the round's best candidate beyond
# them: a step is only recommended when the task figure rises beyond its noise and at least
# MIN_TASK_GAIN, so such a candidate cannot win. One whose output cosine gains (the cosine
# alone may recommend it) stops only once below the state. The method sweep's finalists stop
# once below the configured row. The standard error is at least one sample's change (1/k):
# k identical figures (a binary agreement, most samples agreeing) prove nothing of the rest.
SEQUENTIAL_STEP = 25
SEQUENTIAL_Z = 2.58
