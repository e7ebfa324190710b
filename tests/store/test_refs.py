"""One contract for every RefStore: versions, compare-and-swap, log, pins; plus disk details."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from ccn.errors import InvalidName, NewerFormat, RefConflict, StoreError, StoreUsageError
from ccn.name import Name
from ccn.store.refs import DiskRefStore, MemoryRefStore, Pin, RefStore

A = b"\x0a" * 32
B = b"\x0b" * 32
C = b"\x0c" * 32
N = Name.parse("/videos/talk")


class TestRefStoreContract:
    def test_empty(self, refs: RefStore) -> None:
        assert refs.latest(N) is None
        assert refs.get(N, 1) is None
        assert refs.versions(N) == []
        assert refs.log(N) == []
        assert refs.names() == []
        assert refs.pins() == []

    def test_publish_versions_in_order(self, refs: RefStore) -> None:
        refs.compare_and_swap(N, None, 1, A)
        refs.compare_and_swap(N, 1, 2, B)
        assert refs.latest(N) == (2, B)
        assert refs.get(N, 1) == A and refs.get(N, 2) == B and refs.get(N, 3) is None
        assert refs.versions(N) == [(1, A), (2, B)]
        log = refs.log(N)
        assert [(e.number, e.id) for e in log] == [(1, A), (2, B)]
        assert log[0].time_ns <= log[1].time_ns

    def test_cas_conflict_changes_nothing(self, refs: RefStore) -> None:
        refs.compare_and_swap(N, None, 1, A)
        with pytest.raises(RefConflict):
            refs.compare_and_swap(N, None, 1, B)
        refs.compare_and_swap(N, 1, 2, B)
        with pytest.raises(RefConflict):
            refs.compare_and_swap(N, 1, 2, C)
        with pytest.raises(RefConflict):
            refs.compare_and_swap(N, 3, 4, C)
        assert refs.versions(N) == [(1, A), (2, B)]

    def test_gaps_allowed_but_numbers_only_grow(self, refs: RefStore) -> None:
        refs.compare_and_swap(N, None, 5, A)
        assert refs.latest(N) == (5, A)
        with pytest.raises(StoreUsageError):
            refs.compare_and_swap(N, 5, 5, B)
        with pytest.raises(StoreUsageError):
            refs.compare_and_swap(N, 5, 0, B)

    @pytest.mark.parametrize("bad", [Name(), Name.parse("/a/v3"), "/a"])
    def test_bad_names_rejected(self, refs: RefStore, bad: object) -> None:
        with pytest.raises(InvalidName):
            refs.compare_and_swap(bad, None, 1, A)  # type: ignore[arg-type]
        with pytest.raises(InvalidName):
            refs.latest(bad)  # type: ignore[arg-type]

    def test_bad_ids_rejected(self, refs: RefStore) -> None:
        with pytest.raises(StoreUsageError):
            refs.compare_and_swap(N, None, 1, A.hex())  # type: ignore[arg-type]
        with pytest.raises(StoreUsageError):
            refs.compare_and_swap(N, None, 1, A[:16])

    def test_names_by_prefix(self, refs: RefStore) -> None:
        names = [
            Name.parse("/a"),
            Name.parse("/a/b"),
            Name.parse("/a/b/c"),
            Name.parse("/ab"),
            Name.parse("/z/%00%2F%25/.hidden/.."),
            Name([b"long" * 60]),
        ]
        for n in names:
            refs.compare_and_swap(n, None, 1, A)
        assert refs.names() == sorted(names)
        assert refs.names(Name.parse("/a")) == names[:3]
        assert refs.names(Name.parse("/a/b")) == names[1:3]
        assert refs.names(Name.parse("/z")) == [names[4]]
        assert refs.names(Name.parse("/nothing")) == []
        assert refs.latest(names[4]) == (1, A)
        assert refs.latest(names[5]) == (1, A)

    def test_names_of_a_subtree(self, refs: RefStore) -> None:
        # ccn ls /data/set7 of a store with many names: the subtree only, nested names and
        # escaped components included, and /data/set7/item5 is not a prefix of .../item50.
        names = [
            Name.parse(text)
            for text in [
                "/data/set7",
                "/data/set7/item5",
                "/data/set7/item5/sub",
                "/data/set7/item50",
                "/data/set7/item5%20x",
                "/data/set7/%2Edot/%00",
                "/data/set70/item5",
                "/data/set6/item5",
            ]
        ]
        for n in names:
            refs.compare_and_swap(n, None, 1, A)
        assert refs.names(Name.parse("/data/set7")) == sorted(names[:6])
        assert refs.names(Name.parse("/data/set7/item5")) == names[1:3]
        assert refs.names(Name.parse("/data/set7/%2Edot")) == [names[5]]
        assert refs.names(Name.parse("/data/set7/item")) == []
        assert refs.names(Name.parse("/data")) == sorted(names)

    def test_names_a_page_at_a_time(self, refs: RefStore) -> None:
        # ls pages through the names with a cursor: each page is what names() gives after
        # it, in the same order, for any cursor (listed or not) and any prefix.
        names = [
            Name.parse(t)
            for t in [
                "/data",
                "/data/set1/item1",
                "/data/set1/item1/sub",
                "/data/set1/item10",
                "/data/set1/a%20b",
                "/data/set1/%2Edot/%00",
                "/data/set2/item2",
                "/data/set10/x",
                "/data/" + "%FF" * 80 + "/long",  # hashed on disk
                "/data/" + "%FF" * 80,
                "/data/" + "%FE" * 80 + "/y",
                "/other/z",
                "/a",
            ]
        ]
        for n in names:
            refs.compare_and_swap(n, None, 1, A)
        assert list(refs.iter_names()) == refs.names() == sorted(names)
        cursors = [*names, Name.parse("/"), Name.parse("/data/set1/item0"), Name.parse("/zz")]
        cursors += [Name.parse("/data/set1/item1/sub/deeper"), Name.parse("/data/set11")]
        for prefix in (None, Name.parse("/data"), Name.parse("/data/set1"), names[8]):
            for after in [None, *cursors]:
                expected = [n for n in refs.names(prefix) if after is None or n > after]
                assert list(refs.iter_names(prefix, after)) == expected, (prefix, after)
        assert list(refs.iter_names(Name.parse("/nothing"))) == []

    def test_pins(self, refs: RefStore) -> None:
        refs.pin(N, 2)
        refs.pin(N)
        refs.pin(N)
        refs.pin(Name.parse("/a"), 1)
        assert refs.pins() == [Pin(Name.parse("/a"), 1), Pin(N, None), Pin(N, 2)]
        assert refs.unpin(N) is True
        assert refs.unpin(N) is False
        assert refs.unpin(N, 7) is False
        assert refs.pins() == [Pin(Name.parse("/a"), 1), Pin(N, 2)]
        with pytest.raises(StoreUsageError):
            refs.pin(N, 0)
        with pytest.raises(InvalidName):
            refs.pin(Name.parse("/a/v1"))

    def test_concurrent_publishers_in_threads(self, refs: RefStore) -> None:
        ids = [bytes([i]) * 32 for i in range(1, 41)]
        won: list[int] = []
        lock = threading.Lock()

        def publisher(my_ids: list[bytes]) -> None:
            for vid in my_ids:
                while True:
                    latest = refs.latest(N)
                    expected = None if latest is None else latest[0]
                    try:
                        refs.compare_and_swap(N, expected, (expected or 0) + 1, vid)
                    except RefConflict:
                        continue
                    with lock:
                        won.append((expected or 0) + 1)
                    break

        threads = [threading.Thread(target=publisher, args=(ids[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        versions = refs.versions(N)
        assert [n for n, _ in versions] == list(range(1, 41))
        assert sorted(v for _, v in versions) == sorted(ids)
        assert sorted(won) == list(range(1, 41))

    def test_closed_refuses(self, refs: RefStore) -> None:
        refs.close()
        with pytest.raises(StoreError):
            refs.compare_and_swap(N, None, 1, A)


class TestDiskRefStore:
    def test_visible_to_a_second_instance(self, tmp_path: Path) -> None:
        with DiskRefStore(tmp_path) as one:
            one.compare_and_swap(N, None, 1, A)
            one.pin(N, 1)
        with DiskRefStore(tmp_path) as two:
            assert two.latest(N) == (1, A)
            assert two.pins() == [Pin(N, 1)]
            with pytest.raises(RefConflict):
                two.compare_and_swap(N, None, 1, B)

    def test_escaped_layout(self, tmp_path: Path) -> None:
        with DiskRefStore(tmp_path, fsync=False) as refs:
            refs.compare_and_swap(Name.parse("/a%2Fb/.."), None, 1, A)
            refs.compare_and_swap(Name([b"x" * 255]), None, 1, A)
        log = tmp_path / "refs" / "a%2Fb" / "%2E." / ".log"
        assert log.read_text().splitlines() == [
            "ccn-ref 1 /a%2Fb/..",
            log.read_text().splitlines()[1],
        ]
        assert log.read_text().splitlines()[1].startswith(f"1 {A.hex()} ")
        hashed = [p.name for p in (tmp_path / "refs").iterdir() if p.name.startswith("%H")]
        assert len(hashed) == 1 and len(hashed[0]) == 66

    def test_clock_is_injectable(self, tmp_path: Path) -> None:
        with DiskRefStore(tmp_path, fsync=False, clock=lambda: 42) as refs:
            refs.compare_and_swap(N, None, 1, A)
            assert refs.log(N)[0].time_ns == 42
        with MemoryRefStore(clock=lambda: 43) as mem:
            mem.compare_and_swap(N, None, 1, A)
            assert mem.log(N)[0].time_ns == 43

    def test_garbled_ref_file_is_an_error(self, tmp_path: Path) -> None:
        with DiskRefStore(tmp_path, fsync=False) as refs:
            refs.compare_and_swap(N, None, 1, A)
            log = tmp_path / "refs" / "videos" / "talk" / ".log"
            log.write_text(log.read_text() + "garbage\n")
            with pytest.raises(StoreError):
                refs.latest(N)

    def test_names_come_from_paths_or_log_headers(self, tmp_path: Path) -> None:
        longest = Name([bytes([0xFF]) * 255] * 8)  # 2040 bytes, each escaped to 3 characters
        with DiskRefStore(tmp_path, fsync=False) as refs:
            for name in (N, Name.parse("/a%2Fb/.."), Name([b"x" * 255]), longest):
                refs.compare_and_swap(name, None, 1, A)
            assert set(refs.names()) == {N, Name.parse("/a%2Fb/.."), Name([b"x" * 255]), longest}
            log = tmp_path / "refs" / "videos" / "talk" / ".log"
            log.write_bytes(b"ccn-ref 1 /videos/talk")  # a header and no newline: still the name
            assert N in refs.names()
            assert refs.log(N) == []
            # A plain path is the name without opening the log (a node starts fast with many
            # names); a garbled log is an error when it is read, as by fsck, gc and producing.
            for garbled in (b"ccn-ref 1 /vid\xe9os\n", b"not a ref\n", b""):
                log.write_bytes(garbled)
                assert N in refs.names()
                with pytest.raises(StoreError, match=r"talk/\.log"):
                    refs.log(N)
            # Where a component is escaped on disk, the header names it, and must be readable.
            (escaped,) = (tmp_path / "refs" / "a%2Fb").glob("*/.log")  # /a%2Fb/..
            escaped.write_bytes(b"not a ref\n")
            with pytest.raises(StoreError, match=r"a%2Fb/.*/\.log"):
                refs.names()

    def test_names_under_a_prefix_open_no_log(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Under a prefix, as from the top, a plain path is the name: listing a subtree of a
        # big store opens none of its logs (it read the header of each).
        from ccn.store import refs as refs_module

        opened: list[str] = []
        header = refs_module._log_name

        def counted(path: str) -> Name:
            opened.append(path)
            return header(path)

        monkeypatch.setattr(refs_module, "_log_name", counted)
        with DiskRefStore(tmp_path, fsync=False) as refs:
            for k in range(20):
                refs.compare_and_swap(Name.parse(f"/data/set{k % 2}/item{k}"), None, 1, A)
            refs.compare_and_swap(Name.parse("/data/set1/a%20b"), None, 1, A)
            refs.compare_and_swap(Name.parse("/data/a%20b/item"), None, 1, A)
            assert len(refs.names(Name.parse("/data/set1"))) == 11
            assert len(refs.names(Name.parse("/data/a%20b"))) == 1  # escaped, but given
            assert opened == [str(tmp_path / "refs" / "data" / "set1" / "a%20b" / ".log")]

    def test_a_page_reads_only_the_directories_on_its_way(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # ls / of 66,000 names walked every directory of the store for each page (1.6-2.4 s)
        # and gave 2000. A page now reads the directories of the names it gives, and those
        # on the way down to its cursor.
        from ccn.store import refs as refs_module

        read: list[str] = []
        reader = refs_module._read_children

        def counted(path: str, comps: tuple[bytes, ...]) -> object:
            read.append(path)
            return reader(path, comps)

        with DiskRefStore(tmp_path, fsync=False) as refs:
            for k in range(200):
                refs.compare_and_swap(Name.parse(f"/data/set{k // 20}/item{k}"), None, 1, A)
            monkeypatch.setattr(refs_module, "_read_children", counted)
            page = list(itertools.islice(refs.iter_names(), 5))
            assert page == [Name.parse(f"/data/set0/item{k}") for k in (0, 1, 10, 11, 12)]
            assert len(read) == 3 + 5  # refs/, data/, set0/ and the five names'
            read.clear()
            after = Name.parse("/data/set5/item113")
            page = list(itertools.islice(refs.iter_names(None, after), 3))
            assert [str(n) for n in page] == [f"/data/set5/item{k}" for k in (114, 115, 116)]
            assert len(read) == 3 + 1 + 3  # down to set5/, the cursor's own, the three
            assert all("set4" not in p and "item112" not in p for p in read)

    def test_a_big_directory_is_listed_once_while_it_does_not_change(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # 66,000 names in one directory: each page listed and sorted all of them (0.4 s).
        # Its sorted listing is kept while the directory's mtime holds; a name published
        # in it changes the mtime, and the next page sees the name.
        from ccn.store import refs as refs_module

        monkeypatch.setattr(refs_module, "_KEEP_LISTING", 50)
        read: list[str] = []
        reader = refs_module._read_children

        def counted(path: str, comps: tuple[bytes, ...]) -> object:
            read.append(os.path.basename(path))
            return reader(path, comps)

        monkeypatch.setattr(refs_module, "_read_children", counted)
        with DiskRefStore(tmp_path, fsync=False) as refs:
            for k in range(100):
                refs.compare_and_swap(Name.parse(f"/flat/n{k:03d}"), None, 1, A)
            flat = tmp_path / "refs" / "flat"
            settled = time.time() - 10
            os.utime(flat, (settled, settled))
            pages = []
            after = None
            while page := list(itertools.islice(refs.iter_names(None, after), 30)):
                pages.append(page)
                after = page[-1]
            assert [n for page in pages for n in page] == refs.names() and len(pages) == 4
            assert read.count("flat") == 1
            refs.compare_and_swap(Name.parse("/flat/n050a"), None, 1, A)
            page = list(itertools.islice(refs.iter_names(None, Name.parse("/flat/n050")), 2))
            assert [str(n) for n in page] == ["/flat/n050a", "/flat/n051"]
            assert read.count("flat") == 2
            # Changed less than two seconds before it was read: not kept (the mtime might
            # not change again on a change within the same timestamp tick).
            list(itertools.islice(refs.iter_names(None, Name.parse("/flat/n060")), 2))
            assert read.count("flat") == 3


def _publish_many(root: str, worker: int, count: int) -> None:
    with DiskRefStore(root, fsync=False) as refs:
        for i in range(count):
            vid = bytes([worker, i]) * 16
            while True:
                latest = refs.latest(N)
                expected = None if latest is None else latest[0]
                try:
                    refs.compare_and_swap(N, expected, (expected or 0) + 1, vid)
                    break
                except RefConflict:
                    continue


@pytest.mark.slow
def test_concurrent_publishers_in_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_publish_many, args=(str(tmp_path), w, 15)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with DiskRefStore(tmp_path) as refs:
        versions = refs.versions(N)
    assert [n for n, _ in versions] == list(range(1, 46))
    assert sorted(v for _, v in versions) == sorted(
        bytes([w, i]) * 16 for w in range(3) for i in range(15)
    )


def test_ref_and_pins_files_of_a_newer_format_are_named_as_such(tmp_path: Path) -> None:
    # A store a newer ccn wrote (say 'ccn-ref 2') is refused in one line that says so, not
    # reported as damaged; and it is left as it is.
    refs = DiskRefStore(tmp_path)
    name = Name.parse("/a/b")
    refs.compare_and_swap(name, None, 1, b"\x01" * 32)
    refs.pin(name, 1)
    log = tmp_path / "refs" / "a" / "b" / ".log"
    log.write_text(log.read_text().replace("ccn-ref 1 ", "ccn-ref 2 ", 1))
    pins = tmp_path / "pins"
    pins.write_text(pins.read_text().replace("ccn-pins 1", "ccn-pins 2", 1))
    newer = r"is ccn-(ref|pins) format 2, written by a newer ccn; this ccn reads format 1"
    for call in (lambda: DiskRefStore(tmp_path).log(name), lambda: DiskRefStore(tmp_path).pins()):
        with pytest.raises(NewerFormat, match=newer):
            call()
    assert log.read_text().startswith("ccn-ref 2 /a/b\n")
    pins.write_text("ccn-pins one\n")  # not a version number: damaged, as before
    with pytest.raises(StoreError, match="malformed"):
        DiskRefStore(tmp_path).pins()
