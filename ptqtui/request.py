"""What the user asked for: the inputs of one diagnosis, from the command line or a test."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ptqtui.policy import TARGET_COSINE

# the adapters of ptqtui.analysis.tasks (kept here so the request needs no numpy import)
TASK_NAMES = ("classification", "detection", "dense", "ocr", "raw")
REPORT_FORMATS = ("text", "md", "json", "html")
FAIL_ON = ("critical", "major", "minor", "never")
MAX_SEED = 2**32 - 1  # numpy's legacy generators take seeds below 2**32; default_rng none < 0


@dataclass(frozen=True, slots=True)
class InputFlags:
    """The facts a YAML would give, as flags (used when there is no config)."""

    input_type_train: str | None = None
    input_type_rt: str | None = None
    layout: str | None = None
    mean: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    cal_data_type: str | None = None
    input_shape: tuple[int | None, ...] | None = None

    def any(self) -> bool:
        return any(getattr(self, f) is not None for f in self.__slots__)


@dataclass(frozen=True, slots=True)
class Request:
    model: Path | None = None
    config: Path | None = None
    cal_dirs: tuple[Path, ...] | None = None
    eval_dir: Path | None = None
    raw_dir: Path | None = None
    read_mode: str = "opencv"
    flags: InputFlags = field(default_factory=InputFlags)
    report: str | None = None  # None: TUI on a terminal, text otherwise
    output: Path | None = None
    fail_on: str = "critical"
    debug: bool = False
    quiet: bool = False
    seed: int = 0
    title: str | None = None  # e.g. "demo: bgr_swap"
    rule_dirs: tuple[Path, ...] = ()  # --rules DIR: extra rule modules
    sensitivity_samples: int = 8  # samples per what-if of the sensitivity analysis
    time_budget: float | None = None  # seconds; analyses trim samples and nodes to fit
    # perf_counter() value the budget counts from (the CLI: when the process started, so
    # Python's start and imports count too); None: when the diagnosis starts
    budget_from: float | None = None
    target_cosine: float = TARGET_COSINE  # the plan's precision step aims at this output cosine
    write_config: Path | None = None  # --write-config: the patched YAML goes here
    mapper_log: Path | None = None  # --mapper-log: the converter's hb_mapper_makertbin.log
    check_backend: bool = False  # --check-backend: compare with onnxruntime's int8 kernels
    task: str | None = None  # --task NAME: the task adapter (None: inferred from the outputs)
    task_module: Path | None = None  # --task-module FILE.py: the user's own adapter
    cache_dir: Path | None = None  # --cache DIR: observations and measurements kept (None: off)
    cache_limit_mb: int = 2048  # --cache-limit MB: least recently used entries go beyond this
    workers: int | None = None  # --workers N: processes for what-ifs (None: by the cores)

    def __post_init__(self) -> None:
        if self.cache_limit_mb < 0:
            raise ValueError("--cache-limit must be 0 or more (MB)")
        if self.report is not None and self.report not in REPORT_FORMATS:
            raise ValueError(f"report format {self.report!r} is not one of {REPORT_FORMATS}")
        if self.fail_on not in FAIL_ON:
            raise ValueError(f"--fail-on {self.fail_on!r} is not one of {FAIL_ON}")
        if self.read_mode not in ("opencv", "skimage"):
            raise ValueError(f"read mode {self.read_mode!r} is not one of opencv, skimage")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"--seed must be a whole number from 0 to {MAX_SEED}, not {self.seed}")
        if self.sensitivity_samples < 1:
            raise ValueError("--sensitivity-samples must be at least 1")
        if self.time_budget is not None and not 0 < self.time_budget < float("inf"):
            raise ValueError("--time-budget must be a positive number of seconds")
        if self.task is not None and self.task not in TASK_NAMES:
            raise ValueError(f"--task {self.task!r} is not one of {', '.join(TASK_NAMES)}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if not 0.0 < self.target_cosine <= 1.0:
            raise ValueError("--target must be an output cosine in (0, 1]")
