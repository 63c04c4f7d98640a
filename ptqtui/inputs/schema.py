"""The hb_mapper makertbin YAML schema: every key of the reference, its type, values, default."""

from __future__ import annotations

import re
from dataclasses import dataclass

GROUPS = ("model_parameters", "input_parameters", "calibration_parameters", "compiler_parameters")
OPTIONAL_GROUPS = ("custom_op",)

# Value kinds the parser knows how to read and check.
STR = "str"
PATH = "path"
BOOL = "bool"
INT = "int"
FLOAT = "float"
ENUM = "enum"
NAMES = "names"  # ';'-separated list of names
PER_INPUT_ENUM = "per-input-enum"  # one enum value per input, ';'-separated
PER_INPUT_PATH = "per-input-path"
SHAPES = "shapes"  # 1x3x224x224;1x3x... ('?' for a dynamic dimension)
NUMBERS = "numbers"  # per input ';', per channel spaces, 'None' for no value
NODE_INFO = "node-info"
OPTIMIZATION = "optimization"
MAPPING = "mapping"
ANY = "any"


@dataclass(frozen=True, slots=True)
class KeySpec:
    kind: str
    allowed: tuple[str, ...] = ()
    default: object = None
    required: bool = False
    low: float | None = None  # numeric bounds, inclusive
    high: float | None = None
    deprecated: str | None = None  # why, when the key is only accepted for old configs


INPUT_TYPES_TRAIN = ("rgb", "bgr", "yuv444", "gray", "featuremap")
INPUT_TYPES_RT = ("rgb", "bgr", "yuv444", "nv12", "gray", "featuremap")
LAYOUTS = ("NCHW", "NHWC")
NORM_TYPES = ("no_preprocess", "data_mean", "data_scale", "data_mean_and_scale")
NORM_NEEDS = {  # norm_type -> the keys it reads
    "data_mean": ("mean_value",),
    "data_scale": ("scale_value",),
    "data_mean_and_scale": ("mean_value", "scale_value"),
}
CALIBRATION_TYPES = ("default", "mix", "kl", "max", "load", "skip")
CAL_DATA_TYPES = ("float32", "uint8", "int32", "int16", "int8")
MARCHES = ("bernoulli2", "bayes", "bayes-e")

SCHEMA: dict[str, dict[str, KeySpec]] = {
    "model_parameters": {
        "onnx_model": KeySpec(PATH),
        "caffe_model": KeySpec(PATH),
        "prototxt": KeySpec(PATH),
        "march": KeySpec(ENUM, MARCHES, required=True),
        "output_model_file_prefix": KeySpec(STR, required=True),
        "working_dir": KeySpec(PATH, default="model_output"),
        "layer_out_dump": KeySpec(BOOL, default=False),
        "output_nodes": KeySpec(NAMES),
        "remove_node_type": KeySpec(NAMES),
        "remove_node_name": KeySpec(NAMES),
        "set_node_data_type": KeySpec(STR, deprecated="merged into node_info"),
        "debug_mode": KeySpec(ENUM, ("dump_calibration_data",)),
        "node_info": KeySpec(NODE_INFO),
        "log_level": KeySpec(ENUM, ("debug", "info", "warn"), deprecated="no longer read"),
    },
    "input_parameters": {
        "input_name": KeySpec(NAMES, default=""),
        "input_type_train": KeySpec(PER_INPUT_ENUM, INPUT_TYPES_TRAIN, required=True),
        "input_layout_train": KeySpec(PER_INPUT_ENUM, LAYOUTS, required=True),
        "input_type_rt": KeySpec(PER_INPUT_ENUM, INPUT_TYPES_RT, required=True),
        "input_layout_rt": KeySpec(PER_INPUT_ENUM, LAYOUTS),
        "input_space_and_range": KeySpec(
            PER_INPUT_ENUM, ("regular", "bt601_video"), default="regular"
        ),
        "input_shape": KeySpec(SHAPES),
        "input_batch": KeySpec(INT, default=1, low=1, high=4096),
        "norm_type": KeySpec(PER_INPUT_ENUM, NORM_TYPES, required=True),
        "mean_value": KeySpec(NUMBERS),
        "scale_value": KeySpec(NUMBERS),
    },
    "calibration_parameters": {
        "cal_data_dir": KeySpec(PER_INPUT_PATH),
        "cal_data_type": KeySpec(PER_INPUT_ENUM, CAL_DATA_TYPES),
        "preprocess_on": KeySpec(BOOL, default=False),
        "calibration_type": KeySpec(ENUM, CALIBRATION_TYPES, default="default"),
        "max_percentile": KeySpec(FLOAT, default=1.0, low=0.0, high=1.0),
        "per_channel": KeySpec(BOOL, default=False),
        "run_on_cpu": KeySpec(NAMES),
        "run_on_bpu": KeySpec(NAMES),
        "optimization": KeySpec(OPTIMIZATION),
    },
    "compiler_parameters": {
        "compile_mode": KeySpec(ENUM, ("latency", "bandwidth", "balance"), required=True),
        "balance_factor": KeySpec(INT, low=0, high=100),
        "debug": KeySpec(BOOL, default=False),
        "core_num": KeySpec(INT, default=1, low=1, high=2),
        "optimize_level": KeySpec(ENUM, ("O0", "O1", "O2", "O3"), required=True),
        "input_source": KeySpec(MAPPING),
        "max_time_per_fc": KeySpec(INT, default=0, low=0, high=4294967295),
        "jobs": KeySpec(INT, low=1),
        "advice": KeySpec(INT, low=0),
    },
    "custom_op": {
        "custom_op_method": KeySpec(ENUM, ("register",)),
        "op_register_files": KeySpec(NAMES),
        "custom_op_dir": KeySpec(PATH),
    },
}

# Keys that take one value per model input, in the order of `input_name`.
PER_INPUT_KEYS = (
    "input_parameters.input_name",
    "input_parameters.input_type_train",
    "input_parameters.input_layout_train",
    "input_parameters.input_type_rt",
    "input_parameters.input_layout_rt",
    "input_parameters.input_space_and_range",
    "input_parameters.input_shape",
    "input_parameters.norm_type",
    "input_parameters.mean_value",
    "input_parameters.scale_value",
    "input_parameters.std_value",  # hb_compile
    "calibration_parameters.cal_data_dir",
    "calibration_parameters.cal_data_type",
)

OPTIMIZATION_ITEMS = (
    "set_model_output_int8",
    "set_model_output_int16",
    "set_Softmax_input_int8",
    "set_Softmax_output_int8",
    "set_all_nodes_int16",
    "asymmetric",
    "bias_correction",
    "lstm_batch_last",
    "run_fast",
)
# set_{OpType}_input_int16, set_{OpType}_output_int8, ...
OPTIMIZATION_OP_PATTERN = re.compile(r"^set_([A-Za-z][A-Za-z0-9]*)_(input|output)_int(8|16)$")

NODE_INFO_FIELDS = ("ON", "InputType", "OutputType")
NODE_INFO_PLACES = ("BPU", "CPU")
NODE_DTYPES = ("int8", "int16")
NODE_INPUT_TYPE_PATTERN = re.compile(r"^InputType(\d+)$")

# Legal input_type_train -> input_type_rt pairs (reference §1, the rdk_doc table).
LEGAL_TYPE_PAIRS: dict[str, tuple[str, ...]] = {
    "yuv444": ("nv12", "yuv444"),
    "rgb": ("nv12", "yuv444", "rgb", "bgr"),
    "bgr": ("nv12", "yuv444", "rgb", "bgr"),
    "gray": ("gray",),
    "featuremap": ("featuremap",),
}

# The newer hb_compile generation: march nash-*, plus keys the makertbin schema never had.
HB_COMPILE_MARCH_PREFIX = "nash"
HB_COMPILE_KEYS = ("quant_config", "std_value", "cache_mode", "cache_path", "max_l2m_size")
HB_COMPILE_MARCHES = ("nash-e", "nash-m", "nash-p")  # S100, S100P, S600 (reference §1)


def _hb_compile_schema() -> dict[str, dict[str, KeySpec]]:
    """The makertbin schema with hb_compile's changes (reference §1, 'Newer hb_compile')."""
    changed = {group: dict(keys) for group, keys in SCHEMA.items()}
    model, inputs = changed["model_parameters"], changed["input_parameters"]
    cal, compiler = changed["calibration_parameters"], changed["compiler_parameters"]
    model["march"] = KeySpec(ENUM, HB_COMPILE_MARCHES, required=True)
    inputs["norm_type"] = KeySpec(
        PER_INPUT_ENUM, NORM_TYPES, deprecated="derived from mean_value/scale_value/std_value"
    )
    inputs["input_layout_rt"] = KeySpec(PER_INPUT_ENUM, LAYOUTS, deprecated="no longer read")
    inputs["std_value"] = KeySpec(NUMBERS)
    inputs["separate_batch"] = KeySpec(BOOL, default=False)
    inputs["separate_name"] = KeySpec(NAMES)
    cal["cal_data_type"] = KeySpec(
        PER_INPUT_ENUM, CAL_DATA_TYPES, deprecated="calibration data are .npy files"
    )
    cal["preprocess_on"] = KeySpec(BOOL, default=False, deprecated="no longer read")
    cal["quant_config"] = KeySpec(ANY)
    compiler["optimize_level"] = KeySpec(ENUM, ("O0", "O1", "O2"), required=True)
    compiler["cache_mode"] = KeySpec(ENUM, ("enable", "disable", "force"))
    compiler["cache_path"] = KeySpec(PATH)
    compiler["max_l2m_size"] = KeySpec(INT, low=0)
    compiler["extra_params"] = KeySpec(ANY)
    compiler["core_num"] = KeySpec(INT, default=1, low=1)
    return changed


HB_COMPILE_SCHEMA = _hb_compile_schema()
SCHEMAS = {"makertbin": SCHEMA, "hb_compile": HB_COMPILE_SCHEMA}


def legal_type_pair(train: str, rt: str) -> bool:
    """Whether the converter accepts run-time data `rt` for a model trained on `train`."""
    return rt in LEGAL_TYPE_PAIRS.get(train, ())
