"""The converter's own log (`hb_mapper makertbin`), read by content, not by version number.

Both generations are read: the older one (X3, hb_mapper 1.1.x: `INFO` lines, `Run calibration
model with kl method.`, a node table `Node ON Subgraph Type Cosine Similarity Threshold`, `The
quantify model output:`) and the newer one (X5/Ultra, hb_mapper 1.2x: `file: ... line No: ...`
lines, the search grid `The activation calibration parameters:`, `Select ... method.`, a node
table with a `DataType` or `In/Out DataType` column, `The quantized model output:`). A line
this module does not know is skipped, never an error; a truncated log gives what it has.
Tables are read by the columns of their header line (cells may be empty), with a
whitespace split as the fallback for a row whose columns were not kept aligned.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ptqtui.errors import PtqInputError

MAX_LOG_BYTES = 64 * 1024 * 1024  # a conversion log is a few MB at most; refuse anything huge
LOG_NAMES = ("hb_mapper_makertbin.log",)  # the converter writes its log under this name

# "2024-09-30 12:47:30,056 file: x.py func: x line No: 96 " or "2021-04-20 17:06:18,817 INFO "
_PREFIX = re.compile(
    r"^\s*\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?\s+"
    r"(?:\[?(?:INFO|WARNING|WARN|ERROR|DEBUG|CRITICAL)\]?\s+)?"
    r"(?:file:\s*\S+\s+func:\s*\S+\s+line No:\s*\d+\s*)?"
)
_SAMPLES = (
    re.compile(r"There are (\d+) samples in the (?:calibration )?data set"),
    re.compile(r"number of calibration data samples:\s*(\d+)"),
    re.compile(r"num of calibration data:\s*(\d+)"),
    re.compile(r"number_of_samples:\s*(\d+)"),
)
_CONFLICT = re.compile(
    r"calibration dir name suffix is not the same as the value (\S+) of the parameter "
    r"cal_data_type"
)
_RUN = re.compile(r"Run calibration model with (.+?) method")
_SELECT = re.compile(r"Select (.+?) method\.?\s*$")
_MARCH = re.compile(
    r"(?:specified model compilation architecture:|compile the model with march)\s*([\w-]+)"
)
_SET_DTYPE = re.compile(r"The (input|output) of node (.+?) are set to : (\w+)")
_UNSUPPORTED = re.compile(
    r"The (input\d*|output\d*) of Node\(name:(.+?), type:(\w+)\) does not support data type: "
    r"(\w+)"
)
_NODE_TABLES = ("The converted model node information:", "The main quantized node information:")
_OUTPUT_TABLES = ("The quantify model output:", "The quantized model output:")
_END_MARKERS = ("End Model Convert", "Convert to runtime bin file successfully")
_NODE_HEADER = re.compile(r"^Node\s+ON\s+Subgraph\s+Type\b")
_SUBGRAPH = re.compile(r"id\((\d+)\)")
_DTYPE = re.compile(r"^(?:u?int\d+|float\d*)(?:/(?:u?int\d+|float\d*))*$")
_NODE_COLUMNS = (
    ("name", "Node"),
    ("on", "ON"),
    ("subgraph", "Subgraph"),
    ("type", "Type"),
    ("cosine", "Cosine Similarity"),
    ("threshold", "Threshold"),
    ("dtype", r"(?:In/Out )?DataType"),
)
_PLACEMENTS = ("BPU", "CPU")


@dataclass(frozen=True, slots=True)
class LogNode:
    """One row of the converter's node table."""

    name: str  # as the converter writes it (unnamed ONNX nodes: their output tensor's name;
    # names longer than the column are cut to '...' + their last characters)
    on: str  # "BPU" | "CPU"
    subgraph: int | None  # BPU subgraph id; None on the CPU
    type: str  # the converter's op type: "HzSQuantizedConv", "Conv", "Reshape"
    cosine: float | None  # the node output's cosine, quantized vs float (None: not given)
    threshold: float | None
    dtype: str | None  # "int8", "int16", "float", or "in/out": "int8/int32"
    line: int

    @property
    def truncated(self) -> bool:
        return self.name.startswith("...")

    def names(self, full_name: str) -> bool:
        """Whether this row is the node `full_name` (a cut name matches by its tail)."""
        if self.truncated:
            return full_name.endswith(self.name[3:])
        return self.name == full_name

    @property
    def output_dtype(self) -> str | None:
        return self.dtype.rpartition("/")[2] if self.dtype else None

    @property
    def input_dtype(self) -> str | None:
        return self.dtype.partition("/")[0] if self.dtype else None


@dataclass(frozen=True, slots=True)
class LogOutput:
    """One row of the converter's model-output table."""

    name: str
    cosine: float
    l1: float
    l2: float
    chebyshev: float
    line: int


@dataclass(frozen=True, slots=True)
class SearchGrid:
    """What the `default` (modelwise) search tried: 'The activation calibration parameters'."""

    calibration_type: tuple[str, ...] = ()
    max_percentile: tuple[float, ...] = ()
    per_channel: tuple[bool, ...] = ()
    asymmetric: tuple[bool, ...] = ()
    similarity: float | None = None  # 'The modelwise search parameters'
    metric: str | None = None
    line: int | None = None

    def describe(self) -> str:
        parts = []
        for key in ("calibration_type", "max_percentile", "per_channel", "asymmetric"):
            values = getattr(self, key)
            if values:
                parts.append(f"{key} {'/'.join(_plain(v) for v in values)}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class DtypeSetting:
    """A node's dtype as the converter set it ('The input of node X are set to : int16')."""

    node: str
    side: str  # "input" | "output"
    dtype: str
    line: int


@dataclass(frozen=True, slots=True)
class DtypeFallback:
    """A requested dtype the converter could not give ('does not support data type: int16')."""

    node: str
    op_type: str
    port: str  # "input1", "output"
    dtype: str
    line: int


@dataclass(frozen=True, slots=True)
class MapperLog:
    """What one converter log says; every part may be missing (an old or truncated log)."""

    path: Path
    samples: int | None = None
    samples_line: int | None = None
    dtype_conflict: str | None = None  # the cal_data_type value the converter kept
    dtype_conflict_line: int | None = None
    method_run: str | None = None  # "kl", "default calibration", "modelwise search" ...
    chosen: str | None = None  # "max-percentile:percentile=0.99995,per_channel"
    chosen_line: int | None = None
    per_channel: bool = False
    asymmetric: bool = False
    grid: SearchGrid | None = None
    march: str | None = None
    nodes: tuple[LogNode, ...] = ()
    node_table_line: int | None = None
    outputs: tuple[LogOutput, ...] = ()
    output_table_line: int | None = None
    dtype_settings: tuple[DtypeSetting, ...] = ()
    fallbacks: tuple[DtypeFallback, ...] = ()
    complete: bool = False  # the conversion's end line was seen
    lines: int = 0

    @property
    def is_empty(self) -> bool:
        """Nothing the converter writes was found: probably not a conversion log."""
        return (
            not self.nodes
            and not self.outputs
            and self.samples is None
            and self.chosen is None
            and self.method_run is None
        )

    @property
    def cpu_nodes(self) -> tuple[LogNode, ...]:
        return tuple(n for n in self.nodes if n.on == "CPU")

    @property
    def subgraphs(self) -> tuple[int, ...]:
        """The BPU subgraph ids, in order of first appearance."""
        return tuple(dict.fromkeys(n.subgraph for n in self.nodes if n.subgraph is not None))

    @property
    def chosen_method(self) -> str | None:
        """The calibration method the search chose, without its options: 'max-percentile'."""
        if self.chosen is None:
            return None
        return self.chosen.split(":", 1)[0].split(",", 1)[0].strip()

    @property
    def chosen_percentile(self) -> float | None:
        match = re.search(r"percentile=([\d.]+)", self.chosen or "")
        return float(match.group(1)) if match else None

    def node(self, name: str) -> LogNode | None:
        for n in self.nodes:
            if n.name == name:
                return n
        return None

    def where(self, line: int | None) -> str:
        return f"{self.path.name} line {line}" if line else self.path.name


def load_mapper_log(path: Path) -> MapperLog:
    """Read a converter log; PtqInputError (one line) when the file cannot be read."""
    path = Path(path)
    try:
        if path.is_dir():
            raise PtqInputError(path, "is a directory, expected the converter's log file")
        if path.stat().st_size > MAX_LOG_BYTES:
            raise PtqInputError(path, f"larger than {MAX_LOG_BYTES >> 20} MB: not a converter log")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PtqInputError(path, "no such file") from None
    except OSError as exc:
        raise PtqInputError(path, f"cannot read: {exc.strerror or exc}") from None
    if b"\x00" in raw[:4096]:
        raise PtqInputError(path, "is a binary file, not a converter log")
    text = raw.decode("utf-8", errors="replace")
    log = parse_mapper_log(text, path)
    if log.is_empty:
        raise PtqInputError(
            path, "has none of the converter's lines (node table, samples, method): not a log"
        )
    return log


def find_mapper_log(config_path: Path, working_dir: Path | None = None) -> Path | None:
    """The converter's log next to the config or in its working_dir, when there is one."""
    places = [Path(config_path).parent]
    if working_dir is not None:
        places.append(working_dir)
    for place in places:
        for name in LOG_NAMES:
            candidate = place / name
            if candidate.is_file():
                return candidate
    return None


def parse_mapper_log(text: str, path: Path = Path("hb_mapper_makertbin.log")) -> MapperLog:
    """Every fact the log holds; unknown lines are skipped."""
    lines = text.splitlines()
    found: dict[str, object] = {}
    samples: list[tuple[int, int, int]] = []  # (pattern rank, count, line)
    dtype_settings: list[DtypeSetting] = []
    fallbacks: list[DtypeFallback] = []
    i = 0
    while i < len(lines):
        number = i + 1
        body = _PREFIX.sub("", lines[i]).strip()
        untitled = _NODE_HEADER.match(body) is not None  # a table pasted without its title
        if untitled or body.endswith(_NODE_TABLES):
            nodes, i = _read_node_table(lines, i if untitled else i + 1)
            if nodes:  # the last table wins (a checker run may print one before)
                found["nodes"], found["node_table_line"] = nodes, number
            continue
        if body.endswith(_OUTPUT_TABLES):
            outputs, i = _read_output_table(lines, i + 1)
            if outputs:
                found["outputs"], found["output_table_line"] = outputs, number
            continue
        if body.endswith("The activation calibration parameters:"):
            grid, i = _read_grid(lines, i + 1, number)
            found["grid"] = grid
            continue
        for rank, pattern in enumerate(_SAMPLES):
            match = pattern.search(body)
            if match:
                samples.append((rank, int(match.group(1)), number))
                break
        if match := _CONFLICT.search(body):
            found["dtype_conflict"], found["dtype_conflict_line"] = match.group(1), number
        elif match := _SELECT.search(body):
            found["chosen"], found["chosen_line"] = match.group(1).strip(), number
            if ",per_channel" in body or "per_channel method" in body:
                found["per_channel"] = True
            if ",asymmetric" in body:
                found["asymmetric"] = True
        elif match := _RUN.search(body):
            if not match.group(1).startswith("bias correction"):
                found["method_run"] = match.group(1).strip()
        elif "Perchannel quantization is enabled" in body:
            found["per_channel"] = True
        elif "Asymmetric quantization is enabled" in body:
            found["asymmetric"] = True
        elif match := _MARCH.search(body):
            found["march"] = match.group(1).rstrip(".")
        elif match := _SET_DTYPE.search(body):
            dtype_settings.append(
                DtypeSetting(match.group(2), match.group(1), match.group(3), number)
            )
        elif match := _UNSUPPORTED.search(body):
            port, node, op, dtype = match.groups()
            fallbacks.append(DtypeFallback(node, op, port, dtype, number))
        elif any(marker in body for marker in _END_MARKERS):
            found["complete"] = True
        i += 1
    if samples:
        # the whole set's count ('There are N samples') over one input's ('number_of_samples')
        rank, count, line = min(samples, key=lambda s: (s[0], s[2]))
        found["samples"], found["samples_line"] = count, line
    return MapperLog(
        path=Path(path),
        dtype_settings=tuple(dtype_settings),
        fallbacks=tuple(fallbacks),
        lines=len(lines),
        **found,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- tables


def _is_rule(line: str) -> bool:
    s = line.strip()
    return len(s) >= 3 and set(s) <= {"=", "-"}


def _ends_table(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("```") or bool(_PREFIX.match(line)) or _is_rule(line)


def _table_rows(lines: list[str], start: int, header_word: str) -> tuple[str | None, list, int]:
    """(header line, [(line number, row)], index after the table) from just after the title."""
    i = start
    header = None
    # the title is followed by '====', the header, '----'; tolerate any of them missing
    while i < len(lines) and i < start + 4:
        s = lines[i].strip()
        if _is_rule(lines[i]) or not s:
            i += 1
            continue
        if s.startswith(header_word) and header is None:
            header = lines[i]
            i += 1
            continue
        break
    rows = []
    while i < len(lines) and not _ends_table(lines[i]):
        rows.append((i + 1, lines[i]))
        i += 1
    return header, rows, i


def _read_node_table(lines: list[str], start: int) -> tuple[tuple[LogNode, ...], int]:
    header, rows, end = _table_rows(lines, start, "Node")
    columns = _columns(header) if header else []
    nodes = []
    for number, row in rows:
        node = _node_by_columns(row, columns, number) if columns else None
        if node is None:
            node = _node_by_tokens(row, number)
        if node is not None:
            nodes.append(node)
    return tuple(nodes), end


def _columns(header: str) -> list[tuple[str, int]]:
    """(field, start column) of each header name found, in order."""
    found = []
    for field, title in _NODE_COLUMNS:
        match = re.search(rf"(?<!\S){title}(?!\S)", header)
        if match:
            found.append((field, match.start()))
    found.sort(key=lambda fc: fc[1])
    return found


def _node_by_columns(row: str, columns: list[tuple[str, int]], number: int) -> LogNode | None:
    cells = {}
    for k, (field, start) in enumerate(columns):
        end = columns[k + 1][1] if k + 1 < len(columns) else None
        cell = row[start:end] if end is not None else row[start:]
        cells[field] = cell.strip()
    # a cell that does not start where its header does (misaligned row): refuse
    for _field, start in columns[1:]:
        if start < len(row) and row[start - 1 : start].strip():
            return None
    name, on = cells.get("name", ""), cells.get("on", "")
    if not name or on not in _PLACEMENTS or " " in cells.get("type", "x").strip():
        return None
    try:
        return LogNode(
            name=name,
            on=on,
            subgraph=_subgraph(cells.get("subgraph", "")),
            type=cells.get("type", ""),
            cosine=_number(cells.get("cosine", "")),
            threshold=_number(cells.get("threshold", "")),
            dtype=_dtype(cells.get("dtype", "")),
            line=number,
        )
    except ValueError:
        return None


def _node_by_tokens(row: str, number: int) -> LogNode | None:
    tokens = row.split()
    if len(tokens) < 4 or tokens[1] not in _PLACEMENTS:
        return None
    numbers: list[float | None] = []
    dtype = None
    for token in tokens[4:]:
        if _DTYPE.match(token):
            dtype = token
            continue
        try:
            numbers.append(_number(token))
        except ValueError:
            return None
    numbers += [None, None]
    return LogNode(
        tokens[0], tokens[1], _subgraph(tokens[2]), tokens[3], numbers[0], numbers[1], dtype, number
    )


def _read_output_table(lines: list[str], start: int) -> tuple[tuple[LogOutput, ...], int]:
    header, rows, end = _table_rows(lines, start, "")
    if header is not None and "Cosine" not in header:  # the first row was taken as a header
        rows.insert(0, (start + 1, header))
    outputs = []
    for number, row in rows:
        parts = row.rsplit(maxsplit=4)
        if len(parts) != 5:
            continue
        try:
            values = [float(p) for p in parts[1:]]
        except ValueError:
            continue
        outputs.append(LogOutput(parts[0].strip(), *values, line=number))
    return tuple(outputs), end


def _read_grid(lines: list[str], start: int, number: int) -> tuple[SearchGrid, int]:
    values: dict[str, object] = {}
    i = start
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("The modelwise search parameters:"):
            i += 1
            continue
        if not line[:1].isspace() or ":" not in s:
            break
        key, _, value = s.partition(":")
        values[key.strip()] = _literal(value.strip())
        i += 1
    similarity = values.get("similarity")
    return (
        SearchGrid(
            calibration_type=tuple(str(v) for v in _as_tuple(values.get("calibration_type"))),
            max_percentile=tuple(
                float(v) for v in _as_tuple(values.get("max_percentile")) if _is_number(v)
            ),
            per_channel=tuple(bool(v) for v in _as_tuple(values.get("per_channel"))),
            asymmetric=tuple(bool(v) for v in _as_tuple(values.get("asymmetric"))),
            similarity=float(similarity) if _is_number(similarity) else None,
            metric=str(values["metric"]) if "metric" in values else None,
            line=number,
        ),
        i,
    )


# ---------------------------------------------------------------- cells


def _number(cell: str) -> float | None:
    cell = cell.strip()
    if cell in ("", "--", "-"):
        return None
    return float(cell)


def _subgraph(cell: str) -> int | None:
    match = _SUBGRAPH.search(cell)
    return int(match.group(1)) if match else None


def _dtype(cell: str) -> str | None:
    cell = cell.strip()
    return cell if cell and _DTYPE.match(cell) else None


def _literal(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _as_tuple(value: object) -> tuple[object, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _plain(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def iter_worst_nodes(log: MapperLog, count: int) -> Iterator[LogNode]:
    """The nodes with the lowest converter cosine, worst first."""
    scored = [n for n in log.nodes if n.cosine is not None and not math.isnan(n.cosine)]
    yield from sorted(scored, key=lambda n: n.cosine)[:count]  # type: ignore[arg-type, return-value]
