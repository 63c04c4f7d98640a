"""Command line: parse, dispatch to the TUI or a report, turn errors into one line and exit 2."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from ptqtui import __version__
from ptqtui.atomic import write_atomically
from ptqtui.budget import process_start
from ptqtui.errors import ExitCode, PtqInputError, UsageError
from ptqtui.inputs import schema
from ptqtui.inputs.config import parse_shape
from ptqtui.inputs.files import read_bounded
from ptqtui.policy import TARGET_COSINE
from ptqtui.request import FAIL_ON, REPORT_FORMATS, TASK_NAMES, InputFlags, Request

PROG = "ptqtui"
DEFAULT_WIDTH = 80  # text reports without a terminal: the 80x24 an SSH session may have
MIN_WIDTH, MAX_WIDTH = 40, 1000  # COLUMNS outside these is a mistake, not a wish
MAX_REPORT_BYTES = 256 * 1024 * 1024  # a saved diagnosis is a few MB; refuse to read more
SUBCOMMANDS = ("demo", "rules", "explain", "view", "diff", "lint", "log", "serve")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _usable_std_streams()
    # the core logs warnings (it never prints); the user sees them as one stderr line each
    logging.basicConfig(format=f"{PROG}: %(message)s", level=logging.WARNING, stream=sys.stderr)
    if debug:  # tracebacks of rules that fail, and the core's debug lines
        logging.getLogger(PROG).setLevel(logging.DEBUG)
    try:
        return _dispatch(args)
    except PtqInputError as exc:
        return _fail(exc.one_line(), debug)
    except UsageError as exc:
        return _fail(str(exc), debug)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Terminated as exc:  # SIGTERM, or SIGHUP when an SSH session drops
        print(f"{PROG}: terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum  # what the shell reports for a process the signal ended
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
    print(f"{PROG}: {printable(message)}", file=sys.stderr)
    return ExitCode.USAGE


def printable(text: str) -> str:
    """`text` with control characters escaped: a file name must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no descriptor to replace: drop the stream instead
        sys.stdout = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    finally:
        os.close(devnull)


def _usable_std_streams() -> None:
    """A closed stdout or stderr (`>&-`) becomes the null device, so no write can fail on it.

    Names from the user's disk may hold bytes that are not UTF-8 (Python keeps them as lone
    surrogates): they are written as `\\udcff` escapes, which keep every output valid UTF-8 and,
    inside a JSON string, read back as the same name.
    """
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            null = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            null.closed_by_user = True  # type: ignore[attr-defined]
            setattr(sys, name, null)
            continue
        if hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                continue


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl+C, so no partial output file is left."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def ending_on_signals() -> Iterator[None]:
    """While a report is made, SIGTERM and SIGHUP raise `Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep observations and measurements here, for the next run (default: ~/.cache/ptqtui)",
    )
    sim.add_argument("--no-cache", action="store_true", help="measure everything afresh")
    sim.add_argument(
        "--cache-limit",
        type=int,
        default=2048,
        metavar="MB",
        help="keep the cache under this size; least recently used entries go first (default 2048)",
    )
    sim.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="the diagnosis in about this time (most promising work first); what does not "
        "fit is reported 'not measured (time budget)' and concludes nothing",
    )
    sim.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes for what-ifs (default: 1 on up to 2 cores, else half the cores)",
    )
    sim.add_argument(
        "--target",
        type=float,
        default=TARGET_COSINE,
        metavar="COSINE",
        help=f"output cosine the plan's precision step aims at (default {TARGET_COSINE:g})",
    )
    sim.add_argument(
        "--task",
        choices=TASK_NAMES,
        help="how to read the model's outputs for the loss (default: from their shapes)",
    )
    sim.add_argument(
        "--task-module",
        type=Path,
        metavar="FILE.py",
        help="your own task adapter: decode(outputs) and agreement(a, b) (docs/tasks.md)",
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
        description="Find out why a model lost accuracy after int8 post-training quantization,\n"
        "and what to change.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
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
        "--mapper-log",
        type=Path,
        metavar="LOG",
        help="the converter's hb_mapper_makertbin.log (default: found next to the config or in "
        "its working_dir)",
    )
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


_EPILOG = f"""subcommands (each has --help):
  {PROG} demo [SCENARIO|--list]      run on a bundled demo scenario
  {PROG} lint CONFIG.yaml            check a hb_mapper config without running
  {PROG} rules                       list the rules ptqtui checks
  {PROG} explain CODE                explain one rule, e.g. PTQ002
  {PROG} view REPORT.json            open a saved JSON diagnosis
  {PROG} diff A.json B.json          what changed between two saved runs
  {PROG} log LOG                     read the converter's own log
  {PROG} serve [ARGS | REPORT.json]  the TUI in a browser, for you only

exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
  2 bad usage or unreadable input, 130 interrupted (Ctrl+C),
  129 and 143 ended by SIGHUP and SIGTERM (no partial output is left)."""


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
        mapper_log=ns.mapper_log,
        **extra,
    )


def _request(ns: argparse.Namespace, **inputs: object) -> Request:
    """A Request from the inputs given and the run options every command shares."""
    task_module = getattr(ns, "task_module", None)
    if task_module is not None:  # a broken module is bad input: said now, exit 2
        from ptqtui.analysis.tasks import load_task_module

        load_task_module(task_module)
    from ptqtui.cache import default_cache_dir  # lazily: numpy

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
            budget_from=process_start() if ns.time_budget is not None else None,
            target_cosine=ns.target,
            check_backend=ns.check_backend,
            write_config=ns.write_config,
            task=getattr(ns, "task", None),
            task_module=task_module,
            cache_dir=None if ns.no_cache else (ns.cache or default_cache_dir()),
            cache_limit_mb=ns.cache_limit,
            workers=getattr(ns, "workers", None),
            **inputs,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def run(request: Request) -> int:
    """Diagnose, then show the TUI (terminal, no --report) or write the report."""
    _refuse_overwriting_inputs(request)
    for flag, out in (("-o", request.output), ("--write-config", request.write_config)):
        if out is not None:
            check_output_path(out, flag)
    if request.write_config is not None and request.config is None:
        raise UsageError("--write-config needs -c CONFIG.yaml: it writes a patched copy of it")
    if request.report is None and _terminal() and request.output is None:
        return _run_tui(request)
    from ptqtui.diagnosis import diagnose
    from ptqtui.report.progress import StderrProgress

    with ending_on_signals():
        with StderrProgress(sys.stderr, prog=PROG, quiet=request.quiet) as progress:
            diagnosis = diagnose(request, progress=progress)
        emit(diagnosis, request.report or "text", request.output)
        if request.write_config is not None:
            _write_config(diagnosis, request)
    return exit_code_for(diagnosis, request.fail_on)


def _run_tui(request: Request) -> int:
    """The TUI; then --write-config as in report mode. Exit codes: the findings' (0/1), 130
    closed before the diagnosis finished, 128+n on SIGTERM/SIGHUP, 2 bad input, 3 a bug."""
    from ptqtui.tui.app import make_app  # Textual only when the TUI starts
    from ptqtui.tui.widgets.images import prepare

    app = make_app(request, handle_signals=True)
    prepare()  # the terminal's graphics protocol, asked before Textual takes the terminal
    result = app.run()
    if app.crashed:
        return ExitCode.INTERNAL
    if result is None:  # closed before the diagnosis finished, failed, or a signal
        return int(app.return_code if app.return_code is not None else ExitCode.INTERRUPTED)
    if request.write_config is not None:
        _write_config(result, request)
    return exit_code_for(result, request.fail_on)


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
        if getattr(sys.stdout, "closed_by_user", False):
            print(f"{PROG}: stdout is closed; the report went nowhere (use -o FILE)",
                  file=sys.stderr)  # fmt: skip
        width = _terminal_width(sys.stdout)
        write_report(diagnosis, fmt, sys.stdout, width=width)  # type: ignore[arg-type]
        sys.stdout.flush()
        return
    width = _columns(default=DEFAULT_WIDTH)
    write_atomically(output, lambda fh: write_report(diagnosis, fmt, fh, width=width))  # type: ignore[arg-type]


def check_output_path(path: Path, flag: str) -> None:
    """Refuse, before any work, an output path that cannot become a file (exit 2)."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise PtqInputError(path, f"cannot write: directory {directory} does not exist")
    if path.exists() and not path.is_file():
        raise UsageError(f"{flag} {path} is not a regular file; give a file name")


def _terminal_width(stream: TextIO) -> int:
    if stream.isatty():
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except OSError:
            pass
    return _columns(default=DEFAULT_WIDTH)


def _columns(default: int) -> int:
    """COLUMNS when it is a sensible width, else `default`."""
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return default
    return width if MIN_WIDTH <= width <= MAX_WIDTH else default


def _refuse_overwriting_inputs(request: Request) -> None:
    owned = [p for p in (request.model, request.config, request.eval_dir, request.raw_dir) if p]
    owned += list(request.cal_dirs or ())
    if request.config is not None and (request.output or request.write_config):
        owned += _named_by_config(request.config)
    for flag, out in (("-o", request.output), ("--write-config", request.write_config)):
        if out is None:
            continue
        for p in owned:
            if p.resolve() == out.resolve():
                raise UsageError(f"{flag} {out} is one of your inputs; it is never overwritten")


def _refuse_same_file(out: Path, inputs: tuple[Path, ...]) -> None:
    for p in inputs:
        if p.resolve() == out.resolve():
            raise UsageError(f"-o {out} is one of your inputs; it is never overwritten")


def _named_by_config(config: Path) -> list[Path]:
    """The model and calibration folders a config names (inputs too, never overwritten)."""
    from ptqtui.inputs.config import load_config

    try:
        loaded = load_config(config)
    except PtqInputError:
        return []  # the diagnosis says why, in its own words
    named = [s.cal_data_dir for s in loaded.inputs if s.cal_data_dir is not None]
    return [loaded.model_path, *named] if loaded.model_path is not None else named


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

    list_rules(sys.stdout, ns.rules, width=_terminal_width(sys.stdout))
    return ExitCode.OK


def _explain(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} explain", description="Explain one rule.")
    parser.add_argument("code", help="rule code, e.g. PTQ002")
    parser.add_argument("--rules", type=Path, action="append", default=[], metavar="DIR")
    ns = parser.parse_args(args)
    from ptqtui.check.commands import explain

    explain(ns.code, sys.stdout, ns.rules, width=_terminal_width(sys.stdout))
    return ExitCode.OK


def _lint(args: list[str]) -> int:
    from ptqtui.cli_lint import lint

    return lint(args)


def _log(args: list[str]) -> int:
    from ptqtui.cli_log import log_command

    return log_command(args)


def _view(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} view", description="Open a saved JSON diagnosis.")
    parser.add_argument("report", type=Path, metavar="REPORT.json")
    parser.add_argument("--report", dest="fmt", choices=REPORT_FORMATS, help="print as a report")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(args)
    if ns.output is not None:
        check_output_path(ns.output, "-o")
        _refuse_same_file(ns.output, (ns.report,))
    diagnosis = load_saved(ns.report)
    if ns.fmt is None and ns.output is None and _terminal():
        from ptqtui.tui.app import make_viewer
        from ptqtui.tui.widgets.images import prepare

        prepare()  # the terminal's graphics protocol, asked before Textual takes it
        app = make_viewer(diagnosis, handle_signals=True)  # type: ignore[arg-type]
        app.run()
        if app.crashed:
            return ExitCode.INTERNAL
        return int(app.return_code or ExitCode.OK)
    emit(diagnosis, ns.fmt or "text", ns.output)
    return ExitCode.OK


def _terminal() -> bool:
    """A terminal to draw the TUI on: stdout is one, or `ptqtui serve` runs us in a browser."""
    from ptqtui.serve import SERVED_ENV

    return sys.stdout.isatty() or os.environ.get(SERVED_ENV) == "1"


def _serve(args: list[str]) -> int:
    parser = _Parser(
        prog=f"{PROG} serve",
        description="The TUI in a browser (textual-serve), for you only: the URL carries a "
        "token. Give the main command's arguments, or a saved REPORT.json.",
        epilog=f"e.g. '{PROG} serve model.onnx -c config.yaml', '{PROG} serve report.json', "
        f"'{PROG} serve demo bgr_swap'. On a remote board: ssh -N -L PORT:localhost:PORT "
        "USER@BOARD, then open the printed URL on your laptop.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    ns, rest = parser.parse_known_args(args)
    if not rest:
        raise UsageError(
            f"give the main command's arguments or a REPORT.json (see '{PROG} serve --help')"
        )
    if not 0 <= ns.port <= 65535:
        raise UsageError(f"--port {ns.port} is not a port number")
    if "--report" in rest or any(a.startswith("--report=") for a in rest):
        raise UsageError("serve shows the TUI; write reports with the main command")
    if len(rest) == 1 and rest[0].endswith(".json"):
        load_saved(Path(rest[0]))  # a bad file fails here, once, not in every browser tab
        target = ["view", str(Path(rest[0]).resolve())]
    elif rest[0] == "demo":
        target = rest
    else:
        _request_from(_main_parser().parse_args(rest))  # bad arguments fail here, once
        target = rest
    from ptqtui.serve import serve

    try:
        return serve(target, host=ns.host, port=ns.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {ns.host}:{ns.port}: {exc.strerror or exc}") from None


def _diff(args: list[str]) -> int:
    parser = _Parser(prog=f"{PROG} diff", description="What changed between two saved runs.")
    parser.add_argument("before", type=Path, metavar="A.json")
    parser.add_argument("after", type=Path, metavar="B.json")
    parser.add_argument("--report", dest="fmt", choices=("text", "md", "json"), default="text")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH")
    parser.add_argument("--debug", action="store_true")
    ns = parser.parse_args(args)
    if ns.output is not None:
        check_output_path(ns.output, "-o")
        _refuse_same_file(ns.output, (ns.before, ns.after))
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

    raw = read_bounded(path, MAX_REPORT_BYTES, "a JSON report")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PtqInputError(path, f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PtqInputError(path, f"not JSON: {exc.msg}", line=exc.lineno) from None
    except RecursionError:
        raise PtqInputError(path, "not a ptqtui JSON report: nested far too deeply") from None
    if not isinstance(data, dict):
        raise PtqInputError(path, "not a ptqtui JSON report")
    try:
        return Diagnosis.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        raise PtqInputError(path, f"not a ptqtui JSON report this version reads ({exc})") from None


_SUBCOMMAND_RUNNERS = {
    "demo": _demo,
    "rules": _rules,
    "explain": _explain,
    "view": _view,
    "diff": _diff,
    "lint": _lint,
    "log": _log,
    "serve": _serve,
}
