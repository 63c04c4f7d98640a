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
MIN_GAIN = 2e-4  # cosine gains below this are not worth a change, whatever the noise says

# --- the loss bands of the reference's triage flow (accuracy points of the task metric) ----
LARGE_LOSS_POINTS = 4.0  # "> 4 %": a configuration or data mistake (reference §1)
MEDIUM_LOSS_POINTS = 1.5  # "1.5 % - 3 %" (the guide's small-loss bucket; 3-4 % read as medium)
# Without a task metric the band comes from the output cosine alone (a proxy, ref. §3):
LARGE_LOSS_COSINE = TARGET_COSINE  # below "normal": treated as large
MEDIUM_LOSS_COSINE = SENSITIVE_COSINE  # below the converter's sensitivity line: medium


class LossBand(enum.Enum):
    """The reference's loss bands; the plan's route depends on them."""

    LARGE = "large"  # > 4 points
    MEDIUM = "medium"  # 1.5-4 points
    SMALL = "small"  # < 1.5 points


# --- the calibration tuning order of the reference (§2) ------------------------------------
PERCENTILES = (0.99999, 0.99995, 0.9999, 0.9995, 0.999)  # reference §2, in its order

# --- the backend check (--check-backend) ---------------------------------------------------
# Output cosine lost to onnxruntime's kernels alone (8-bit vs 7-bit weights, simulator vs
# onnxruntime) above which the report warns. Measured on a CPU with VNNI, where nothing
# saturates: up to 0.001 (EfficientNet-Lite1, per-tensor weights; benchmarks/README.md,
# faithfulness), so the warning starts well above that floor.
BACKEND_SATURATION_COSINE = 5e-3
