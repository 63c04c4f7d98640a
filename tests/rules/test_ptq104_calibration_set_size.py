from __future__ import annotations

from ptqtui.rules import ptq104_calibration_set_size as rule

from ptqtui.check.findings import Severity
from tests.check.factories import make_context, natural_images, to_nchw


def test_fires_on_few_samples(tmp_path):
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(natural_images(5))))
    assert finding.remedy is None  # more samples is no change a remedy can make
    assert finding.severity is Severity.MAJOR and "only 5" in finding.message


def test_somewhat_few_is_minor(tmp_path):
    [finding] = rule.check(make_context(tmp_path, calib=to_nchw(natural_images(30))))
    assert finding.severity is Severity.MINOR


def test_quiet_on_about_a_hundred(tmp_path):
    assert rule.check(make_context(tmp_path, calib=to_nchw(natural_images(80)))) == []


def _reloaded(tmp_path, count, extra: dict[str, bytes], *, keep_bins=True):
    """The context of `count` good .bin samples plus `extra` files, read as a run would."""
    from ptqtui.check.context import Context
    from ptqtui.inputs.resolve import load_inputs

    request = make_context(tmp_path, calib=to_nchw(natural_images(count))).request
    calib = tmp_path / "calib"
    if not keep_bins:
        for path in calib.glob("*.bin"):
            path.unlink()
    for name, data in extra.items():
        (calib / name).write_bytes(data)
    return Context.from_inputs(load_inputs(request))


def test_no_readable_sample_is_critical(tmp_path):
    junk = {f"z{i}.jpg": b"\xff\xd8 not a jpeg" for i in range(3)}
    [finding] = rule.check(_reloaded(tmp_path, 1, junk, keep_bins=False))
    assert finding.severity is Severity.CRITICAL
    assert "none of the 3" in finding.message and "cannot be decoded" in finding.message


def test_unreadable_files_do_not_count(tmp_path):
    [finding] = rule.check(_reloaded(tmp_path, 40, {f"z{i}.jpg": b"junk" for i in range(20)}))
    assert finding.severity is Severity.MINOR  # 60 files listed, 40 usable: somewhat few
    assert "only 40" in finding.message and "20 more cannot be read" in finding.message
