"""Build a tree of hostile inputs: one workspace per case, each spoiled in one way.

Every case says which commands to run on it. The tree holds what a careless or hostile user
could hand ptqtui: links that lead nowhere or in circles, FIFOs and devices where files are
expected, sparse files claiming gigabytes, names that are not UTF-8 or hold control
characters, YAML bombs, deep nesting, tags, duplicate keys, a config naming itself, saved
reports that are not reports.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPORT = ("-c", "config.yaml", "--report", "json", "-o", "out.json", "--quiet")
LINT = ("lint", "config.yaml")
VIEW = ("view", "saved.json", "--report", "text")
DIFF = ("diff", "saved.json", "saved.json")
SPARSE_BYTES = 3 * 1024**3  # a 3 GB file that takes no disk: only its size is hostile


@dataclass(frozen=True)
class Case:
    name: str
    spoil: Callable[[Path], None]
    commands: tuple[tuple[str, ...], ...] = (REPORT, LINT)
    as_user: bool = False  # run as a non-root user (permission cases)


def _edit_config(old: str, new: str) -> Callable[[Path], None]:
    def spoil(ws: Path) -> None:
        config = ws / "config.yaml"
        text = config.read_text(encoding="utf-8")
        assert old in text, old
        config.write_text(text.replace(old, new), encoding="utf-8")

    return spoil


def _write_config(text: str | bytes) -> Callable[[Path], None]:
    def spoil(ws: Path) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        (ws / "config.yaml").write_bytes(data)

    return spoil


def _replace(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    """Replace the workspace's `name` by what `make(path)` puts there."""

    def spoil(ws: Path) -> None:
        path = ws / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        make(path)

    return spoil


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _sparse(path: Path, size: int = SPARSE_BYTES, head: bytes = b"") -> None:
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(size)


def _zoo(ws: Path) -> None:
    """Every kind of odd entry at once in the calibration folder, beside the good samples."""
    cal = ws / "cal"
    good = (cal / "s000.bin").read_bytes()
    (cal / "dangling.bin").symlink_to(ws / "nowhere.bin")
    (cal / "loop_a.bin").symlink_to("loop_b.bin")
    (cal / "loop_b.bin").symlink_to("loop_a.bin")
    os.mkfifo(cal / "fifo.bin")
    os.mkfifo(cal / "fifo.jpg")
    (cal / "zero.bin").symlink_to("/dev/zero")
    (cal / "zero.jpg").symlink_to("/dev/zero")
    (cal / "null.npy").symlink_to("/dev/null")
    _sparse(cal / "huge.jpg", head=b"\xff\xd8\xff\xe0")
    _sparse(cal / "huge.bin")
    _sparse(cal / "huge.npy", head=b"\x93NUMPY\x01\x00v\x00")
    (cal / "empty.jpg").write_bytes(b"")
    (cal / "empty.npy").write_bytes(b"")
    (cal / "pickle.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': "
                                      b"False, 'shape': (1,), }" + b" " * 60 + b"\n")  # fmt: skip
    (cal / "sub.bin").mkdir()
    (cal / "self.bin").symlink_to(cal)
    for raw in (b"caf\xe9\xff.bin", b"tab\there.bin", b"new\nline.bin", b"\x1b[31mred.bin",
                b"\xe2\x80\xaertl.bin", "emoji-\U0001f600.bin".encode()):  # fmt: skip
        (Path(os.fsdecode(os.fsencode(cal) + b"/" + raw))).write_bytes(good)


def _saved_report(ws: Path, content: bytes | Callable[[Path], None]) -> None:
    if callable(content):
        (ws / "saved.json").unlink()
        content(ws / "saved.json")
    else:
        (ws / "saved.json").write_bytes(content)


def _view_case(name: str, content: bytes | Callable[[Path], None]) -> Case:
    return Case(name, lambda ws: _saved_report(ws, content), commands=(VIEW, DIFF))


RULE_MODULE = """
import sys
from ptqtui.check.findings import Severity
from ptqtui.check.registry import RuleInfo

RULE = RuleInfo(code="{code}", name="hostile-{kind}", category="config",
                severity=Severity.MINOR, title="t", why="w", fix="f")

def check(ctx):
    {body}
"""
RULE_BODIES = {
    "raises": "raise RuntimeError('a bug in the rule')",
    "exits": "sys.exit(3)",
    "recurses": "return check(ctx)",
    "returns-junk": "return [1, 'two']",
}


def _hostile_rules(ws: Path) -> None:
    """A --rules folder whose every rule fails in its own way at check time."""
    folder = ws / "rules_bad"
    folder.mkdir()
    for i, (kind, body) in enumerate(RULE_BODIES.items()):
        code = f"ACME{i + 1:03d}"
        text = RULE_MODULE.format(code=code, kind=kind, body=body)
        (folder / f"{kind.replace('-', '_')}.py").write_text(text, encoding="utf-8")
    for name, text in (("exit_at_import", "import sys\nsys.exit(3)\n"),
                       ("syntax", "def broken(:\n")):  # fmt: skip
        other = ws / f"rules_{name}"
        other.mkdir()
        (other / f"{name}.py").write_text(text, encoding="utf-8")


def _eval_and_raw_zoo(ws: Path) -> None:
    """Evaluation and raw-image folders holding FIFOs, devices, links and junk."""
    import cv2
    import numpy as np

    image = np.full((16, 16, 3), 128, np.uint8)
    for cls in ("0_cat", "1_dog"):
        folder = ws / "evald" / cls
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "a.png"), image)
        os.mkfifo(folder / "fifo.png")
        (folder / "zero.png").symlink_to("/dev/zero")
        (folder / "gone.png").symlink_to(folder / "nowhere.png")
        (folder / "junk.png").write_bytes(b"\x89PNG junk")
    os.mkfifo(ws / "evald" / "classes.txt")
    raw = ws / "rawd"
    raw.mkdir()
    for stem in ("s000", "s001"):
        os.mkfifo(raw / f"{stem}.png")
    (raw / "s002.png").symlink_to("/dev/zero")
    (raw / "s003.png").write_bytes(b"junk")


def _odd_input_names(ws: Path) -> None:
    """The config and the model under names that are not UTF-8 or hold control characters."""
    shutil.copyfile(ws / "config.yaml", os.fsdecode(os.fsencode(ws) + b"/conf\xff.yaml"))
    shutil.copyfile(ws / "model.onnx", ws / "mo\x1b[31mdel\n.onnx")


ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    + ["model_parameters:", "  onnx_model: model.onnx", "  march: *a9", ""]
)


def cases() -> tuple[Case, ...]:
    """Every hostile case; names are unique and used as folder names."""
    return (
        Case("pristine", lambda ws: None),
        # the calibration folder
        Case("calibration-zoo", _zoo, commands=(REPORT,)),
        Case("only-fifos", lambda ws: _only(ws, _fifo), commands=(REPORT,)),
        Case("only-undecodable-images", lambda ws: _only(ws, _junk_jpg), commands=(REPORT,)),
        Case("cal-dir-is-a-fifo", _replace("cal", _fifo), commands=(REPORT,)),
        Case("cal-dir-is-dev", _edit_config("cal_data_dir: cal", "cal_data_dir: /dev/null")),
        Case(
            "cal-dir-is-the-config", _edit_config("cal_data_dir: cal", "cal_data_dir: config.yaml")
        ),
        Case(
            "user-rules-that-fail",
            _hostile_rules,
            commands=(
                (*REPORT, "--rules", "rules_bad"),
                ("rules", "--rules", "rules_bad"),
                ("explain", "ACME001", "--rules", "rules_bad"),
                ("rules", "--rules", "rules_exit_at_import"),
                (*REPORT, "--rules", "rules_syntax"),
                ("rules", "--rules", "config.yaml"),
            ),
        ),
        Case(
            "eval-and-raw-zoo",
            _eval_and_raw_zoo,
            commands=((*REPORT, "--eval-dir", "evald", "--raw-dir", "rawd"),),
        ),
        Case(
            "odd-input-names",
            _odd_input_names,
            commands=(
                ("-c", os.fsdecode(b"conf\xff.yaml"), "--report", "json", "-o", "out.json"),
                ("mo\x1b[31mdel\n.onnx", "--cal-dir", "cal", "--report", "json", "-o", "out.json"),
                ("lint", os.fsdecode(b"conf\xff.yaml")),
                ("-c", os.fsdecode(b"missing\xff.yaml"), "--report", "text"),
            ),
        ),
        Case(
            "other-subcommands",
            lambda ws: None,
            commands=(
                ("demo", "--list"),
                ("demo", "no-such-scenario", "--report", "text"),
                ("explain", "PTQ999"),
                ("explain", "\x1b[2J\u202e"),
                ("--seed", "-1", "-c", "config.yaml", "--report", "text"),
                ("--time-budget", "nan", "-c", "config.yaml", "--report", "text"),
                ("--target", "inf", "-c", "config.yaml", "--report", "text"),
                ("--sensitivity-samples", "0", "-c", "config.yaml", "--report", "text"),
                ("--mean", "1 x 3", "model.onnx", "--report", "text"),
                ("--input-shape", "1x3x-4x0", "model.onnx", "--report", "text"),
                ("-c", "config.yaml", "--report", "text", "-o", "/dev/full"),
                ("-c", "config.yaml", "--report", "text", "-o", "model.onnx"),
                ("-c", "config.yaml", "--report", "text", "--write-config", "config.yaml"),
                ("view", "saved.json", "--report", "json", "-o", "saved.json"),
                ("diff", "saved.json", "saved.json", "-o", "./saved.json"),
                ("--no-such-flag",),
                (),
            ),
        ),
        # the model
        Case("model-is-a-fifo", _replace("model.onnx", _fifo)),
        Case("model-is-dev-zero", _replace("model.onnx", _dev_zero)),
        Case("model-is-sparse-3gb", _replace("model.onnx", _sparse)),
        Case(
            "model-is-the-config", _edit_config("onnx_model: model.onnx", "onnx_model: config.yaml")
        ),
        Case("model-truncated", lambda ws: _truncate(ws / "model.onnx")),
        Case("model-names-itself-as-dir", _edit_config("onnx_model: model.onnx", "onnx_model: .")),
        # the config
        Case("config-alias-bomb", _write_config(ALIAS_BOMB)),
        Case(
            "config-self-alias", _write_config("model_parameters: &a\n  onnx_model: x\n  m: *a\n")
        ),
        Case("config-deep-flow", _write_config("model_parameters: " + "[" * 5000 + "]" * 5000)),
        Case("config-deep-block", _write_config(_deep_block(200))),
        Case(
            "config-python-tag",
            _edit_config("march: bernoulli2", "march: !!python/object/apply:os.system [id]"),
        ),
        Case("config-custom-tag", _edit_config("march: bernoulli2", "march: !bpu bernoulli2")),
        Case(
            "config-unhashable-key",
            _edit_config(
                "  march: bernoulli2", "  march: bernoulli2\n  {a: 1}: [x]\n  ? [b]\n  : 2"
            ),
        ),
        Case(
            "config-duplicate-keys",
            _edit_config("  march: bernoulli2", "  march: bernoulli2\n  march: bayes"),
        ),
        Case(
            "config-duplicate-groups", lambda ws: _append(ws, "model_parameters:\n  march: bayes\n")
        ),
        Case(
            "config-control-chars",
            _edit_config(
                "output_model_file_prefix: tiny",
                'output_model_file_prefix: "\\e[2J\\e[31mred\\u202e\\0"',
            ),
        ),
        Case(
            "config-unicode-keys",
            _edit_config(
                "  march: bernoulli2", "  march: bernoulli2\n  m\u00e4rch\u202e: \U0001f600"
            ),
        ),
        Case("config-nul-byte", lambda ws: _append(ws, "\0\n")),
        Case("config-latin1", lambda ws: _append_bytes(ws, b"# caf\xe9\n")),
        Case("config-bom", lambda ws: _prepend_bytes(ws, b"\xef\xbb\xbf")),
        Case("config-is-a-fifo", _replace("config.yaml", _fifo)),
        Case("config-is-dev-zero", _replace("config.yaml", _dev_zero)),
        Case("config-is-sparse-3gb", _replace("config.yaml", _sparse)),
        Case("config-is-a-folder", _replace("config.yaml", lambda p: p.mkdir())),
        Case("config-is-empty", _write_config("")),
        Case("config-is-a-list", _write_config("- model_parameters\n- 1\n")),
        Case(
            "config-is-the-model", lambda ws: shutil.copyfile(ws / "model.onnx", ws / "config.yaml")
        ),
        Case("config-huge-scalar", _edit_config("march: bernoulli2", "march: " + "x" * 3_000_000)),
        Case("config-nan-scale", _edit_config("0.01712 0.01751 0.01743", ".nan .inf -.inf")),
        Case("config-zero-scale", _edit_config("0.01712 0.01751 0.01743", "0 0 0")),
        Case("config-shape-nhwc", _edit_config("1x3x16x16", "1x16x16x3")),
        Case("config-shape-huge", _edit_config("1x3x16x16", "1x3x99999999x99999999")),
        Case("config-shape-negative", _edit_config("1x3x16x16", "1x3x-16x16")),
        Case(
            "config-dtype-mismatch", _edit_config("cal_data_type: uint8", "cal_data_type: float32")
        ),
        # permissions (as a non-root user)
        Case("model-unreadable", lambda ws: (ws / "model.onnx").chmod(0), as_user=True),
        Case("config-unreadable", lambda ws: (ws / "config.yaml").chmod(0), as_user=True),
        Case("cal-dir-unlistable", lambda ws: (ws / "cal").chmod(0o311), as_user=True),
        Case(
            "cal-file-unreadable",
            lambda ws: (ws / "cal" / "s001.bin").chmod(0),
            commands=(REPORT,),
            as_user=True,
        ),
        Case("output-dir-read-only", lambda ws: ws.chmod(0o555), commands=(REPORT,), as_user=True),
        # saved reports for view and diff
        _view_case("report-truncated", b'{"schema": "ptqtui.diagnosis/1", "findings": ['),
        _view_case("report-deep", b"[" * 100_000 + b"]" * 100_000),
        _view_case("report-deep-object", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
        _view_case("report-a-list", b"[1, 2, 3]"),
        _view_case(
            "report-wrong-types",
            json.dumps({"schema": "ptqtui.diagnosis/1", "findings": "x", "model": 3}).encode(),
        ),
        _view_case("report-future-schema", b'{"schema": "ptqtui.diagnosis/999"}'),
        _view_case("report-binary", bytes(range(256)) * 4),
        _view_case("report-latin1", b'{"title": "caf\xe9"}'),
        _view_case("report-nan", b'{"schema": "ptqtui.diagnosis/1", "seed": NaN}'),
        _view_case("report-fifo", _fifo),
        _view_case("report-dev-zero", _dev_zero),
        _view_case("report-sparse", lambda p: _sparse(p, 300 * 1024**2, b"{")),
        _view_case("report-folder", lambda p: p.mkdir()),
    )


def _only(ws: Path, make: Callable[[Path], None]) -> None:
    cal = ws / "cal"
    for path in cal.iterdir():
        path.unlink()
    for i in range(3):
        make(cal / f"x{i}.jpg")


def _junk_jpg(path: Path) -> None:
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _deep_block(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "v\n"


def _append(ws: Path, text: str) -> None:
    _append_bytes(ws, text.encode("utf-8"))


def _append_bytes(ws: Path, data: bytes) -> None:
    with (ws / "config.yaml").open("ab") as fh:
        fh.write(data)


def _prepend_bytes(ws: Path, data: bytes) -> None:
    path = ws / "config.yaml"
    path.write_bytes(data + path.read_bytes())
