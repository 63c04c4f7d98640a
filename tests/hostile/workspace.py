"""A small real workspace (model, config, calibration files), and ptqtui run on it."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE = 16  # pixels: the model is tiny, so a whole diagnosis takes about a second of compute
SAMPLES = 6
TIMEOUT = 60.0  # seconds for one ptqtui process: a hang fails the test instead of the suite
ALLOWED_EXITS = frozenset({0, 1, 2, 130})
HASHED_BYTES = 1 << 20  # huge (sparse) files are hashed by size and their first MiB

CONFIG = """\
# hostile-input workspace: a tiny RGB classifier
model_parameters:
  onnx_model: model.onnx
  march: bernoulli2
  output_model_file_prefix: tiny
  working_dir: model_output
input_parameters:
  input_name: images
  input_type_train: rgb
  input_layout_train: NCHW
  input_type_rt: rgb
  input_layout_rt: NCHW
  input_shape: 1x3x{size}x{size}
  norm_type: data_mean_and_scale
  mean_value: 123.675 116.28 103.53
  scale_value: 0.01712 0.01751 0.01743
calibration_parameters:
  cal_data_dir: cal
  cal_data_type: uint8
  calibration_type: max
compiler_parameters:
  compile_mode: latency
  optimize_level: O3
"""


def tiny_model() -> onnx.ModelProto:
    """images 1x3xSxS -> Conv -> Relu -> Reshape(1, -1 fixed) -> Gemm -> Softmax.

    The Reshape fixes batch 1, so the simulator's batched probe fails inside onnxruntime,
    which logs an error line of its own: the line must never reach the user.
    """
    rng = np.random.default_rng(0)
    weights = {
        "conv_w": (rng.normal(0, 0.3, (4, 3, 3, 3))).astype(np.float32),
        "conv_b": np.zeros(4, np.float32),
        "shape": np.array([1, 4 * SIZE * SIZE], np.int64),
        "fc_w": (rng.normal(0, 0.05, (5, 4 * SIZE * SIZE))).astype(np.float32),
        "fc_b": np.zeros(5, np.float32),
    }
    nodes = [
        helper.make_node(
            "Conv", ["images", "conv_w", "conv_b"], ["c"], pads=[1, 1, 1, 1], name="conv"
        ),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def make_workspace(root: Path, samples: int = SAMPLES) -> Path:
    """model.onnx, config.yaml and cal/ with `samples` uint8 .bin files under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    onnx.save(tiny_model(), root / "model.onnx")
    (root / "config.yaml").write_text(CONFIG.format(size=SIZE), encoding="utf-8")
    cal = root / "cal"
    cal.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(samples):
        image = rng.integers(0, 256, (1, 3, SIZE, SIZE), dtype=np.uint8)
        image.tofile(cal / f"s{i:03d}.bin")
    return root


@dataclass(frozen=True)
class Run:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str


def ptqtui(
    *args: str,
    cwd: Path,
    close_stdout: bool = False,
    timeout: float = TIMEOUT,
    env: dict[str, str] | None = None,
    user: int | None = None,
) -> Run:
    """Run `python -m ptqtui ARGS` in `cwd`; stdout as bytes (it must be valid UTF-8 itself)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PYTHONIOENCODING")}
    full_env.update(env or {})
    preexec = None
    if close_stdout or user is not None:

        def preexec() -> None:
            if close_stdout:
                os.close(1)
            if user is not None:
                os.setgid(user)
                os.setuid(user)

    result = subprocess.run(
        [sys.executable, "-m", "ptqtui", *args],
        cwd=cwd,
        stdout=None if close_stdout else subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=full_env,
        preexec_fn=preexec,  # only to close fd 1 or drop root
    )
    stderr = result.stderr.decode("utf-8", errors="replace")
    return Run(tuple(args), result.returncode, result.stdout or b"", stderr)


def assert_clean(run: Run) -> None:
    """An allowed exit code, no traceback, no internal error, no onnxruntime log line."""
    where = f"ptqtui {' '.join(run.argv)} -> {run.returncode}\n{run.stderr[-2000:]}"
    assert run.returncode in ALLOWED_EXITS, where
    assert "Traceback" not in run.stderr, where
    assert "internal error" not in run.stderr, where
    assert "onnxruntime:" not in run.stderr and "[E:" not in run.stderr, where
    run.stdout.decode("utf-8")  # every output is valid UTF-8, whatever the file names


def fingerprint(root: Path) -> dict[str, tuple[int, str]]:
    """Every regular file under `root` (links not followed): size and hash of its content."""
    found: dict[str, tuple[int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in (*filenames, *dirnames):
            path = Path(dirpath) / name
            try:
                st = path.lstat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or not os.access(path, os.R_OK):
                continue
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                digest.update(fh.read(HASHED_BYTES))
            found[os.fsdecode(bytes(path.relative_to(root)))] = (st.st_size, digest.hexdigest())
    return found
