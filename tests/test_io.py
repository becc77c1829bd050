"""Atomic outputs: a failed block leaves nothing; concurrent writers of a cache entry both succeed."""

from __future__ import annotations

import pytest

from pipeline.io import atomic_dir


def test_a_failed_block_leaves_no_output(tmp_path):
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_replaced_whole(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale").write_text("old")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_keep_existing_lets_the_first_concurrent_writer_win(tmp_path):
    """Two jobs featurize the same split at once: the second rename finds the first's copy."""
    target = tmp_path / "cache"
    with atomic_dir(target, keep_existing=True) as mine:
        (mine / "data").write_text("second")
        with atomic_dir(target, keep_existing=True) as theirs:  # lands while we are writing
            (theirs / "data").write_text("first")
    assert (target / "data").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # no temporary left behind


def test_without_keep_existing_a_concurrent_copy_is_replaced(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as mine:
        (mine / "data").write_text("mine")
        with atomic_dir(target) as theirs:
            (theirs / "data").write_text("theirs")
    assert (target / "data").read_text() == "mine"


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, mask):
    """Not mkstemp's 0600 / mkdtemp's 0700: a results folder on a shared cluster stays as
    readable as `open()` and `mkdir` would have made it."""
    import os

    from pipeline.io import atomic_write_text

    old = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "d") as d:
            atomic_write_text(d / "b.txt", "y")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "d" / "b.txt").stat().st_mode & 0o777 == 0o666 & ~mask
