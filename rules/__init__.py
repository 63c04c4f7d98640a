"""Built-in rules, one module per rule, in code order (installed as ptqtui.rules).

PTQ0xx input pipeline, PTQ1xx calibration files, PTQ2xx config, PTQ3xx layer numerics.
Codes are never reused.
"""

MODULES = (
    # "ptq001_channel_order_mismatch",
    # "ptq002_double_normalization",
    # "ptq003_value_range_mismatch",
    # "ptq004_resize_mismatch",
    # "ptq005_preprocessing_drift",
    "ptq101_tofile_size_mismatch",
    "ptq102_tofile_layout_mismatch",
    "ptq103_abnormal_calibration_samples",
    "ptq104_calibration_set_size",
    "ptq105_calibration_coverage",
    "ptq106_non_finite_values",
    "ptq201_invalid_config_value",
    "ptq202_input_spec_mismatch",
    "ptq203_unknown_node_name",
    "ptq204_cpu_fallback_placement",
    "ptq205_ineffective_option",
    "ptq206_unsupported_generation",
)
