import numpy as np

from ptqtui.shelf import Shelf


def _samples(n):
    rng = np.random.default_rng(0)
    return [
        {"x": rng.normal(size=(1, 3, 8, 8)).astype(np.float32), "k": np.arange(i, dtype=np.int64)}
        for i in range(n)
    ]


def test_samples_beyond_the_memory_cap_go_to_disk_and_read_back_equal():
    xs = _samples(6)
    shelf = Shelf(memory=2 * (xs[0]["x"].nbytes + 8))
    for s in xs:
        shelf.append(s)
    assert len(shelf) == 6
    assert shelf.held <= shelf.memory and shelf.spilled > 0  # some in memory, the rest on disk
    for got, want in zip(shelf, xs, strict=True):
        assert set(got) == set(want)
        assert all(np.array_equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)
    assert np.array_equal(shelf[-1]["x"], xs[-1]["x"])
    assert shelf[-1]["x"] is not shelf[-1]["x"]  # read afresh: a caller may keep or change it


def test_a_slice_is_a_lazy_view_with_the_same_samples():
    xs = _samples(5)
    shelf = Shelf(memory=0)
    for s in xs:
        shelf.append(s)
    view = shelf[1:4]
    assert len(view) == 3
    assert np.array_equal(view[0]["x"], xs[1]["x"])
    assert np.array_equal(view[1:][-1]["x"], xs[3]["x"])
    assert [int(s["k"].size) for s in view] == [1, 2, 3]


def test_nothing_is_written_while_the_samples_fit():
    shelf = Shelf()
    for s in _samples(3):
        shelf.append(s)
    assert shelf.spilled == 0 and shelf._file is None


def test_a_temporary_directory_that_cannot_hold_them_is_one_input_error(tmp_path):
    import pytest

    from ptqtui.errors import PtqInputError

    shelf = Shelf(memory=0, directory=str(tmp_path / "absent"))
    with pytest.raises(PtqInputError) as err:
        shelf.append(_samples(1)[0])
    assert str(tmp_path / "absent") in err.value.one_line() and "TMPDIR" in err.value.one_line()
