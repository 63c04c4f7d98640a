"""Every subcommand on a generated tree of hostile inputs, each under a timeout.

Whatever the input: an exit code in {0, 1, 2, 130}, no traceback, no onnxruntime log line,
valid UTF-8 on stdout, no input file changed (hashes before and after), and an output file
either complete or absent (no temporary file left behind). The jobs run in one driver
process (tests/hostile/driver.py) so that the suite stays well under a minute.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.driver import ESCAPED, HANG
from tests.hostile.generator import REPORT, Case, cases
from tests.hostile.workspace import ALLOWED_EXITS, fingerprint, make_workspace, ptqtui

JOB_TIMEOUT = 20  # seconds; every job here takes well under one
OUTPUTS = frozenset({"out.json"})
# Not only clean: the right outcome, exit 2 where ptqtui cannot go on.
EXPECTED = {
    "pristine": {0, 1},
    "calibration-zoo": {0, 1},
    "only-undecodable-images": {1},
    "only-fifos": {2},
    "cal-dir-is-a-fifo": {2},
    "model-is-a-fifo": {2},
    "model-is-dev-zero": {2},
    "model-is-sparse-3gb": {2},
    "config-alias-bomb": {2},
    "config-deep-flow": {2},
    "config-python-tag": {2},
    "config-is-a-fifo": {2},
    "config-is-dev-zero": {2},
    "config-is-sparse-3gb": {2},
    "model-unreadable": {2},
    "config-unreadable": {2},
    "cal-dir-unlistable": {2},
    "output-dir-read-only": {2},
}


def _non_root_uid() -> int | None:
    """A user other than root for the permission cases (root reads every file)."""
    if os.geteuid() != 0:
        return None  # not root: the permission cases already apply to us
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return None


@pytest.fixture(scope="module")
def tree() -> Iterator[Path]:
    """One workspace per case, in a folder a non-root user may enter (pytest's is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="ptqtui-hostile-"))
    try:
        root.chmod(0o755)
        base = make_workspace(root / "_base")
        saved = ptqtui("-c", "config.yaml", "--report", "json", "--quiet", cwd=base)
        (base / "saved.json").write_bytes(saved.stdout)
        for case in cases():
            ws = Path(shutil.copytree(base, root / case.name))
            ws.chmod(0o777)  # the non-root user writes its output here
            case.spoil(ws)
        yield root
    finally:
        _remove(root)


@pytest.fixture(scope="module")
def outcome(tree) -> dict[tuple[str, tuple[str, ...]], dict]:
    """Run every job once; (case name, argv) -> {code, note, out, err}, inputs checked."""
    uid = _non_root_uid()
    can_drop = uid is not None or os.geteuid() != 0
    jobs = [
        (case, args) for case in cases() for args in case.commands if can_drop or not case.as_user
    ]
    out_dir = tree / "_runs"
    out_dir.mkdir()
    out_dir.chmod(0o777)
    spec = {
        "out_dir": str(out_dir),
        "jobs": [
            {
                "cwd": str(tree / c.name),
                "argv": list(a),
                "timeout": JOB_TIMEOUT,
                "as_user": c.as_user,
            }
            for c, a in jobs
        ],
    }
    jobs_file = out_dir / "jobs.json"
    jobs_file.write_text(json.dumps(spec), encoding="utf-8")
    before = _inputs(tree)
    command = [sys.executable, "-m", "tests.hostile.driver", str(jobs_file)]
    if uid is not None:
        command += ["--drop-to", str(uid)]
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        command, cwd=Path(__file__).parents[2], env=env, capture_output=True, timeout=600
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    results = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    after = _inputs(tree)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"input files changed, added or removed: {changed}"
    return {(c.name, a): r for (c, a), r in zip(jobs, results, strict=True)}


def test_every_subcommand_ends_cleanly_on_hostile_input(tree, outcome):
    failures = []
    for (name, args), result in outcome.items():
        where = f"[{name}] ptqtui {' '.join(args)} -> {result['code']}"
        err = Path(result["err"]).read_bytes().decode("utf-8", errors="replace")
        out = Path(result["out"]).read_bytes()
        problems = []
        if result["code"] == HANG:
            problems.append(result["note"])
        elif result["code"] == ESCAPED:
            problems.append(f"exception escaped:\n{result['note']}")
        elif result["code"] not in ALLOWED_EXITS:
            problems.append("exit code not in {0, 1, 2, 130}")
        if "Traceback" in err or "internal error" in err:
            problems.append("traceback or internal error on stderr")
        if "onnxruntime:" in err or "[E:" in err:
            problems.append("onnxruntime's own log line on stderr")
        try:
            out.decode("utf-8")
        except UnicodeDecodeError:
            problems.append("stdout is not valid UTF-8")
        problems += _output_problems(tree / name, args)
        if problems:
            failures.append(f"{where}: {'; '.join(problems)}\n{err[-1500:]}")
    assert not failures, "\n\n".join(failures)


def test_the_outcome_is_the_right_one(outcome):
    by_case = {name: r["code"] for (name, args), r in outcome.items() if args == REPORT}
    wrong = {
        name: by_case[name]
        for name, codes in EXPECTED.items()
        if name in by_case and by_case[name] not in codes
    }
    assert not wrong, wrong


def test_permission_cases_ran_as_a_non_root_user(outcome):
    if os.geteuid() == 0 and _non_root_uid() is None:
        pytest.skip("running as root and no 'nobody' user to drop to: root reads every file")
    result = outcome[("config-unreadable", REPORT)]
    err = Path(result["err"]).read_text(encoding="utf-8", errors="replace")
    assert result["code"] == 2 and "Permission denied" in err, err


def test_every_case_has_a_unique_name():
    names = [c.name for c in cases()]
    assert len(names) == len(set(names)) and all(isinstance(c, Case) for c in cases())


def _inputs(root: Path) -> dict[str, tuple[int, str]]:
    return {
        k: v
        for k, v in fingerprint(root).items()
        if Path(k).name not in OUTPUTS and not k.startswith("_runs")
    }


def _output_problems(ws: Path, args: tuple[str, ...]) -> list[str]:
    leftovers = [p.name for p in ws.iterdir() if p.name.startswith(".out.json.")]
    if leftovers:
        return [f"temporary files left: {leftovers}"]
    if "-o" not in args:
        return []
    out = ws / args[args.index("-o") + 1]
    if out.name not in OUTPUTS or not out.exists():
        return []  # an input named by -o: the fingerprints say whether it changed
    if not stat.S_ISREG(out.lstat().st_mode):
        return ["the output is not a regular file"]
    try:
        json.loads(out.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"the output is incomplete: {exc}"]
    return []


def _remove(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o755)
    shutil.rmtree(root, ignore_errors=True)
