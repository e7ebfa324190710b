"""NewStore: what a node start made of its store's path, and taking it back."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccn.store.newstore import NewStore


def _layout(store: Path) -> None:
    """What opening a store adds (a few of its directories and a file)."""
    for d in ("objects", "packs", "cache/versions"):
        (store / d).mkdir(parents=True, exist_ok=True)
    (store / "pins.lock").write_text("")


def test_a_new_path_is_removed_up_to_the_first_directory_that_existed(tmp_path: Path) -> None:
    store = tmp_path / "a" / "b" / "store"
    made = NewStore(store)
    assert made.top == tmp_path / "a"
    store.mkdir(parents=True)
    _layout(store)
    made.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_directory_without_a_store_keeps_what_it_held(tmp_path: Path) -> None:
    (tmp_path / "lost+found").mkdir()  # a mount point's
    made = NewStore(tmp_path)
    _layout(tmp_path)
    made.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["lost+found"]


def test_an_existing_store_is_never_touched(tmp_path: Path) -> None:
    _layout(tmp_path)
    made = NewStore(tmp_path)
    (tmp_path / "refs").mkdir()  # what the start adds to it is the store's now
    made.undo()
    kept = {p.name for p in tmp_path.iterdir()}
    assert kept == {"objects", "packs", "cache", "pins.lock", "refs"}


def test_a_relative_path_is_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    made = NewStore(Path("new"))
    assert made.top == tmp_path / "new"
    Path("new").mkdir()
    made.undo()
    assert not (tmp_path / "new").exists()


def test_what_holds_content_by_then_is_kept(tmp_path: Path) -> None:
    # Two nodes started on one new path at once: the one that failed must not remove the
    # store the other made and published to.
    store = tmp_path / "new" / "store"
    made = NewStore(store)
    _layout(store)
    (store / "refs" / "a").mkdir(parents=True)
    (store / "refs" / "a" / ".log").write_text("ccn-ref 1 /a\n")
    made.undo()
    assert (store / "refs" / "a" / ".log").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    made = NewStore(empty)
    _layout(empty)
    (empty / "packs" / "p.pack").write_bytes(b"x")
    made.undo()
    assert (empty / "packs" / "p.pack").exists() and (empty / "objects").is_dir()
