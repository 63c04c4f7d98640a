"""Property-based hostile input: raw YAML text, file names of any bytes, broken saved reports.

Whatever hypothesis makes, loaders either return or raise one-line `PtqInputError`s, fast.
"""

from __future__ import annotations

import copy
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptqtui.errors import PtqInputError
from ptqtui.inputs.config import load_config
from ptqtui.inputs.data import InputLayout, open_samples

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
GOLDEN = Path(__file__).parents[1] / "report" / "golden" / "prepared.json"

# Pieces of YAML syntax, anchors, aliases, tags and oddities, joined at random: the text is
# mostly invalid YAML, sometimes valid, sometimes an alias web or a tag.
YAML_TOKENS = (
    "model_parameters:", "input_parameters:", "calibration_parameters:", "\n", "  ", "    ",
    "march: ", "onnx_model: ", "node_info: ", "mean_value: ", "input_shape: ", "&a ", "&b ",
    "*a", "*b", "<<: *a", "[", "]", "{", "}", ", ", "- ", "? ", ": ", "!!str ", "!!binary ",
    "!!python/name:os.system ", "!x ", "!!set ", "!!omap ", "'", '"', "#", "|", ">", "---\n",
    "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\t", "\x00", "\x1b[2J", "\u202e", "1e999",
    ".nan", "~", "2020-01-01", "0x1F", "1x3x8x8", "bernoulli2", "\U0001f600", "\\", "\r\n",
)  # fmt: skip


def _one_line_or_none(load, path: Path) -> None:
    try:
        load(path)
    except PtqInputError as err:
        assert "\n" not in str(err)


@PROPERTY
@given(tokens=st.lists(st.sampled_from(YAML_TOKENS), max_size=60))
def test_raw_yaml_text_is_a_config_or_one_clean_error(tokens):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapper.yaml"
        path.write_text("".join(tokens), encoding="utf-8")
        _one_line_or_none(load_config, path)


@PROPERTY
@given(depth=st.integers(1, 3000), kind=st.sampled_from(["[", "{a: ", "- ", "k:\n  "]))
def test_nesting_of_any_depth_is_read_or_refused(depth, kind):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapper.yaml"
        closing = {"[": "]", "{a: ": "}"}.get(kind, "")
        path.write_text(f"model_parameters: {kind * depth}1{closing * depth}\n", encoding="utf-8")
        _one_line_or_none(load_config, path)


names = st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b)


@PROPERTY
@given(stems=st.lists(names, min_size=1, max_size=5, unique=True))
def test_any_file_name_is_listed_and_survives_json(stems):
    layout = InputLayout("x", "uint8", (1, 3, 4, 4), "NCHW", "rgb")
    with tempfile.TemporaryDirectory() as tmp:
        for stem in stems:
            if stem in (b".", b".."):
                continue
            with open(os.fsencode(tmp) + b"/" + stem + b".bin", "wb") as fh:
                fh.write(np.zeros(48, np.uint8).tobytes())
        try:
            source = open_samples([Path(tmp)], [layout])
        except PtqInputError as err:
            assert "\n" not in str(err)
            return
        listed = [str(group[0].name) for group in source.files]
        out = io.BytesIO()
        text = io.TextIOWrapper(out, encoding="utf-8", errors="backslashreplace")
        json.dump(listed, text, ensure_ascii=False)  # as the report writer does
        text.flush()
        assert json.loads(out.getvalue().decode("utf-8")) == listed  # valid UTF-8, same names


def _paths(value, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*prefix, i))


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
REPORTS = settings(PROPERTY, max_examples=40)


@REPORTS
@given(data=st.data())
def test_a_damaged_saved_report_is_shown_or_refused_in_one_line(data, tmp_path_factory):
    from ptqtui.cli import load_saved
    from ptqtui.report import write_report

    doc = json.loads(GOLDEN.read_text(encoding="utf-8"))
    spots = [p for p, _ in _paths(doc) if p and p[0] != "schema"]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(spots))
        delete, junk = data.draw(st.booleans()), data.draw(JUNK)
        doc = copy.deepcopy(doc)
        try:
            parent = doc
            for key in path[:-1]:
                parent = parent[key]
            if delete and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = junk
        except (KeyError, IndexError, TypeError):
            pass  # an earlier change removed the way there
    target = tmp_path_factory.mktemp("saved") / "saved.json"
    target.write_text(json.dumps(doc), encoding="utf-8")
    try:
        diagnosis = load_saved(target)
    except PtqInputError as err:
        assert "\n" not in str(err)
        return
    for fmt in ("text", "md", "json", "html"):
        write_report(diagnosis, fmt, io.StringIO(), width=80)
