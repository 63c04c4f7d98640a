"""Run many ptqtui command lines in ONE process: `python -m tests.hostile.driver JOBS.json`.

A fresh interpreter per command spends most of its time importing onnxruntime, OpenCV and
numpy; here they are imported once. Each job still gets its own working directory, its own
stdout and stderr (file descriptors 1 and 2, so onnxruntime's C-level log lines are caught
too) and a timeout: SIGALRM raises `Hang`, which no `except Exception` in ptqtui swallows.
With `--drop-to UID` the driver runs the jobs marked `as_user` after switching to that user,
everything it needs already imported (root reads every file, so permission cases need it).
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import traceback
from pathlib import Path

HANG = -1000  # "exit code" of a job stopped by its timeout
ESCAPED = -1001  # an exception got out of cli.main


class Hang(BaseException):
    """The job ran past its timeout."""


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def _run_job(job: dict, out_dir: Path, number: int) -> dict:
    from ptqtui import cli

    out_file = out_dir / f"{number}.out"
    err_file = out_dir / f"{number}.err"
    sys.stdout.flush()
    sys.stderr.flush()
    fds = []
    for fd, path in ((1, out_file), (2, err_file)):
        new = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.dup2(new, fd)
        os.close(new)
        fds.append(fd)
    here = os.getcwd()
    code: int
    note = ""
    try:
        os.chdir(job["cwd"])
        signal.alarm(int(job.get("timeout", 30)))
        try:
            code = int(cli.main(job["argv"]))
        except SystemExit as exc:  # --help, --version
            code = exc.code if isinstance(exc.code, int) else 0
    except Hang:
        code, note = HANG, f"no end after {job.get('timeout', 30)} s"
    except BaseException as exc:  # the whole point: record what escaped, go on
        code, note = ESCAPED, "".join(traceback.format_exception(exc))
    finally:
        signal.alarm(0)
        os.chdir(here)
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return {"code": code, "note": note, "out": str(out_file), "err": str(err_file)}


def main(argv: list[str]) -> int:
    jobs_file = Path(argv[0])
    drop_to = int(argv[argv.index("--drop-to") + 1]) if "--drop-to" in argv else None
    spec = json.loads(jobs_file.read_text(encoding="utf-8"))
    out_dir = Path(spec["out_dir"])
    signal.signal(signal.SIGALRM, _alarm)
    # one pair of text streams over fds 1 and 2 for every job; each job re-points the fds
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8")
    import cv2  # noqa: F401 - imported while every file is still readable
    import onnxruntime  # noqa: F401

    results: list[dict | None] = [None] * len(spec["jobs"])
    order = sorted(range(len(spec["jobs"])), key=lambda i: spec["jobs"][i].get("as_user", False))
    dropped = False
    for i in order:
        job = spec["jobs"][i]
        if job.get("as_user") and not dropped:
            if drop_to is None:
                results[i] = {"code": None, "note": "skipped: no user to run as"}
                continue
            os.setgid(drop_to)
            os.setuid(drop_to)
            dropped = True
        results[i] = _run_job(job, out_dir, i)
    (out_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
