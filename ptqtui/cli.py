"""Command line: parse, dispatch to the TUI or a report, turn errors into one line and exit 2."""

from __future__ import annotations

import argparse
import enum
import json
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ptqtui import __version__
from ptqtui.errors import PtqInputError, UsageError
from ptqtui.inputs import schema
from ptqtui.inputs.config import parse_shape
from ptqtui.request import FAIL_ON, REPORT_FORMATS, InputFlags, Request

PROG = "ptqtui"
SUBCOMMANDS = ("demo", "rules", "explain", "view", "diff", "lint")


class ExitCode(enum.IntEnum):
    OK = 0  # nothing at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on
    USAGE = 2  # bad usage or unreadable input
    INTERNAL = 3  # a bug in ptqtui; --debug shows the traceback
    INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    # the core logs warnings (it never prints); the user sees them as one stderr line each
    logging.basicConfig(format=f"{PROG}: %(message)s", level=logging.WARNING, stream=sys.stderr)
    try:
        return _dispatch(args)
    except PtqInputError as exc:
        return _fail(exc.one_line(), debug)
    except UsageError as exc:
        return _fail(str(exc), debug)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.OK
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(
            f"{PROG}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


def _fail(message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(f"{PROG}: {message}", file=sys.stderr)
    return ExitCode.USAGE


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _dispatch(args: list[str]) -> int:
    if args and args[0] in SUBCOMMANDS:
        return _SUBCOMMAND_RUNNERS[args[0]](args[1:])
    parser = _main_parser()
    if not args:
        parser.print_usage(sys.stderr)
        print(
            f"{PROG}: give MODEL.onnx and/or -c CONFIG.yaml, or try '{PROG} demo'", file=sys.stderr
        )
        return ExitCode.USAGE
    ns = parser.parse_args(args)
    return run(_request_from(ns))


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument("--report", choices=REPORT_FORMATS, help="write a report instead of the TUI")
    out.add_argument("-o", "--output", type=Path, metavar="PATH", help="write the report here")
    out.add_argument(
        "--fail-on",
        choices=FAIL_ON,
        default="critical",
        help="exit 1 when findings at or above this severity exist (default critical)",
    )
    out.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    out.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    out.add_argument("--seed", type=int, default=0, help="seed for sampling (default 0)")
    sim = parser.add_argument_group("analysis")
    sim.add_argument(
        "--sensitivity-samples",
        type=int,
        default=8,
        metavar="S",
        help="samples per node in the sensitivity analysis (default 8)",
    )
    sim.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="trim samples and nodes (most promising first) to fit this time",
    )
    sim.add_argument(
        "--target",
        type=float,
        default=0.99,
        metavar="COSINE",
        help="output cosine the plan's precision step aims at (default 0.99)",
    )
    sim.add_argument(
        "--check-backend",
        action="store_true",
        help="also run the scheme on onnxruntime's int8 kernels and report where they differ",
    )
    sim.add_argument(
        "--write-config",
        type=Path,
        metavar="OUT.yaml",
        help="write your config with the plan's changes here (yours is untouched)",
    )
    out.add_argument(
        "--rules",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also run the rule modules (.py) in DIR (repeatable)",
    )


def _main_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Find out why a model lost accuracy after int8 post-training quantization, "
        "and what to change.",
        epilog=f"Also: '{PROG} demo [SCENARIO|--list]', '{PROG} rules', "
        f"'{PROG} explain CODE', '{PROG} view REPORT.json'. Exit codes: 0 nothing at or above "
        "--fail-on, 1 findings at or above it, 2 bad usage or unreadable input, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "model",
        nargs="?",
        type=Path,
        metavar="MODEL.onnx",
        help="the float ONNX model (optional when the config names it)",
    )
    parser.add_argument(
        "-c", "--config", type=Path, metavar="CONFIG.yaml", help="hb_mapper makertbin YAML"
    )
    data = parser.add_argument_group("data")
    data.add_argument("--cal-dir", metavar="DIR", help="calibration data; ';' between inputs' dirs")
    data.add_argument("--eval-dir", type=Path, metavar="DIR", help="labelled evaluation images")
    data.add_argument("--raw-dir", type=Path, metavar="DIR", help="raw images behind .bin files")
    data.add_argument(
        "--read-mode",
        choices=("opencv", "skimage"),
        default="opencv",
        help="how the pipeline reads images: opencv (BGR 0..255) or skimage (RGB 0..1)",
    )
    flags = parser.add_argument_group("input facts without a YAML")
    flags.add_argument("--input-type-train", choices=schema.INPUT_TYPES_TRAIN)
    flags.add_argument("--input-type-rt", choices=schema.INPUT_TYPES_RT)
    flags.add_argument("--layout", choices=schema.LAYOUTS, help="layout of the model input")
    flags.add_argument("--mean", metavar="'M [M M]'", help="mean per channel, as mean_value")
    flags.add_argument("--scale", metavar="'S [S S]'", help="scale per channel, as scale_value")
    flags.add_argument("--cal-data-type", choices=schema.CAL_DATA_TYPES)
    flags.add_argument("--input-shape", metavar="1x3x224x224")
    _add_run_options(parser)
    return parser


def _numbers(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not numbers separated by spaces") from None
    if not values:
        raise UsageError(f"{flag} is empty")
    return values


def _request_from(ns: argparse.Namespace, **extra: object) -> Request:
    shape = None
    if ns.input_shape:
        try:
            shape = parse_shape(ns.input_shape)
        except ValueError:
            raise UsageError(f"--input-shape {ns.input_shape!r} is not like 1x3x224x224") from None
    flags = InputFlags(
        input_type_train=ns.input_type_train,
        input_type_rt=ns.input_type_rt,
        layout=ns.layout,
        mean=_numbers(ns.mean, "--mean"),
        scale=_numbers(ns.scale, "--scale"),
        cal_data_type=ns.cal_data_type,
        input_shape=shape,
    )
    if ns.model is None and ns.config is None:
        raise UsageError(
            "give MODEL.onnx, or -c CONFIG.yaml whose model_parameters.onnx_model names it"
        )
    cal_dirs = None
    if ns.cal_dir:
        cal_dirs = tuple(Path(p.strip()) for p in ns.cal_dir.split(";") if p.strip())
    return _request(
        ns,
        model=ns.model,
        config=ns.config,
        cal_dirs=cal_dirs,
        eval_dir=ns.eval_dir,
        raw_dir=ns.raw_dir,
        read_mode=ns.read_mode,
        flags=flags,
        **extra,
    )


def _request(ns: argparse.Namespace, **inputs: object) -> Request:
    """A Request from the inputs given and the run options every command shares."""
    try:
        return Request(
            report=ns.report,
            output=ns.output,
            fail_on=ns.fail_on,
            debug=ns.debug,
            quiet=ns.quiet,
            seed=ns.seed,
            rule_dirs=tuple(ns.rules),
            sensitivity_samples=ns.sensitivity_samples,
            time_budget=ns.time_budget,
            target_cosine=ns.target,
            check_backend=ns.check_backend,
            write_config=ns.write_config,
            **inputs,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run(request: Request) -> int:
    """Diagnose, then show the TUI (terminal, no --report) or write the report."""
    _refuse_overwriting_inputs(request)
    if request.write_config is not None and request.config is None:
        raise UsageError("--write-config needs -c CONFIG.yaml: it writes a patched copy of it")
    if request.report is None and sys.stdout.isatty() and request.output is None:
        from ptqtui.tui.app import make_app  # Textual only when the TUI starts

        app = make_app(request)
        result = app.run()
        if result is None:  # closed before the diagnosis finished
            return int(app.return_code or ExitCode.INTERRUPTED)
        return exit_code_for(result, request.fail_on)
    from ptqtui.diagnosis import diagnose
    from ptqtui.report.progress import StderrProgress

    with StderrProgress(sys.stderr, prog=PROG, quiet=request.quiet) as progress:
        diagnosis = diagnose(request, progress=progress)
    emit(diagnosis, request.report or "text", request.output)
    if request.write_config is not None:
        _write_config(diagnosis, request)
    return exit_code_for(diagnosis, request.fail_on)


def _write_config(diagnosis: object, request: Request) -> None:
    from ptqtui.advise.patch import write_patched_config

    plan = diagnosis.plan  # type: ignore[attr-defined]
    if plan is None or plan.patched_config is None:
        print(f"{PROG}: --write-config: the plan changes nothing in the config; nothing written",
              file=sys.stderr)  # fmt: skip
        return
    out = write_patched_config(plan, request.write_config, request.config)  # type: ignore[arg-type]
    if not request.quiet:
        print(f"{PROG}: wrote the patched config to {out}", file=sys.stderr)


def exit_code_for(diagnosis: object, fail_on: str) -> int:
    from ptqtui.check.findings import Severity

    if fail_on == "never":
        return ExitCode.OK
    worst = diagnosis.findings_at_least(Severity.parse(fail_on))  # type: ignore[attr-defined]
    return ExitCode.FINDINGS if worst else ExitCode.OK


def emit(diagnosis: object, fmt: str, output: Path | None) -> None:
    """Write the report to stdout, or atomically to `output` (temp file, then rename)."""
    from ptqtui.report import write_report

    if output is None:
        width = _terminal_width(sys.stdout)
        write_report(diagnosis, fmt, sys.stdout, width=width)  # type: ignore[arg-type]
        sys.stdout.flush()
        return
    write_atomically(output, lambda fh: write_report(diagnosis, fmt, fh, width=100))  # type: ignore[arg-type]


def write_atomically(path: Path, write) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise PtqInputError(path, f"cannot write: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _terminal_width(stream: TextIO) -> int:
    if stream.isatty():
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except OSError:
            pass
    return int(os.environ.get("COLUMNS", "100") or 100)


def _refuse_overwriting_inputs(request: Request) -> None:
    owned = [p for p in (request.model, request.config) if p is not None]
    owned += list(request.cal_dirs or ())
    for flag, out in (("-o", request.output), ("--write-config", request.write_config)):
        if out is None:
            continue
        for p in owned:
            if p.resolve() == out.resolve():
                raise UsageError(f"{flag} {out} is one of your inputs; it is never overwritten")


# ---------------------------------------------------------------- subcommands


def _demo(args: list[str]) -> int:
    from ptqtui import demo

    parser = _Parser(prog=f"{PROG} demo", description="Run ptqtui on a bundled demo scenario.")
    parser.add_argument("scenario", nargs="?", help="scenario name (default: the most instructive)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    _add_run_options(parser)
    ns = parser.parse_args(args)
    if ns.list:
        for name, title in demo.list_scenarios():
            print(f"{name:<16} {title}")
        return ExitCode.OK
    scenario = demo.find_scenario(ns.scenario)
    request = _request(
        ns,
        config=scenario.config,
        eval_dir=scenario.eval_dir,
        title=f"demo: {scenario.name}",
    )
    return run(request)


def _rules(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} rules", description="List the rules ptqtui checks.")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    ns = parser.parse_args(args)
    from ptqtui.check.commands import list_rules

    list_rules(sys.stdout, ns.rules)
    return ExitCode.OK


def _explain(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} explain", description="Explain one rule.")
    parser.add_argument("code", help="rule code, e.g. PTQ002")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    ns = parser.parse_args(args)
    from ptqtui.check.commands import explain

    explain(ns.code, sys.stdout, ns.rules)
    return ExitCode.OK


def _lint(args: list[str]) -> int:
    from ptqtui.check.commands import lint

    return lint(args)


def _view(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} view", description="Open a saved JSON diagnosis.")
    parser.add_argument("report", type=Path, metavar="REPORT.json")
    parser.add_argument("--report", dest="fmt", choices=REPORT_FORMATS, help="print as a report")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(args)
    diagnosis = load_saved(ns.report)
    if ns.fmt is None and ns.output is None and sys.stdout.isatty():
        from ptqtui.tui.app import make_viewer

        make_viewer(diagnosis).run()
        return ExitCode.OK
    emit(diagnosis, ns.fmt or "text", ns.output)
    return ExitCode.OK


def _diff(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} diff", description="What changed between two saved runs.")
    parser.add_argument("before", type=Path, metavar="A.json")
    parser.add_argument("after", type=Path, metavar="B.json")
    parser.add_argument("--report", dest="fmt", choices=("text", "md", "json"), default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(args)
    from ptqtui.report.diff import compare, write_diff

    diff = compare(load_saved(ns.before), load_saved(ns.after))  # type: ignore[arg-type]
    names = (ns.before.name, ns.after.name)
    if ns.output is None:
        write_diff(diff, ns.fmt, sys.stdout, names=names)
    else:
        write_atomically(ns.output, lambda fh: write_diff(diff, ns.fmt, fh, names=names))
    return ExitCode.OK


def load_saved(path: Path) -> object:
    from ptqtui.diagnosis import Diagnosis

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PtqInputError(path, "no such file") from None
    except IsADirectoryError:
        raise PtqInputError(path, "is a directory, expected a JSON report") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PtqInputError(path, f"cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PtqInputError(path, f"not JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, dict):
        raise PtqInputError(path, "not a ptqtui JSON report")
    try:
        return Diagnosis.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PtqInputError(path, f"not a ptqtui JSON report this version reads ({exc})") from None


_SUBCOMMAND_RUNNERS = {
    "demo": _demo,
    "rules": _rules,
    "explain": _explain,
    "view": _view,
    "diff": _diff,
    "lint": _lint,
}
