"""The versions a node has seen pass: kept in order, bounded, and read back after a restart."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from ccn.name import Name
from ccn.store.seen import SeenVersions

DOC = Name.parse("/doc")


def vid(n: int) -> bytes:
    return bytes([n]) * 32


def test_records_once_and_lists_newest_first(tmp_path: Path) -> None:
    seen = SeenVersions(tmp_path / "versions")
    assert list(seen.newest_first(DOC)) == [] and seen.get(DOC, 1) is None
    assert seen.record(DOC, 2, vid(2))
    assert seen.record(DOC, 1, vid(1))  # arriving out of order is fine
    assert not seen.record(DOC, 2, vid(9))  # a version never changes: the first stays
    assert list(seen.newest_first(DOC)) == [(2, vid(2)), (1, vid(1))]
    assert seen.get(DOC, 1) == vid(1) and len(seen) == 2
    assert list(seen.newest_first(Name.parse("/doc/sub"))) == []
    seen.close()


def test_survives_a_restart_and_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "versions"
    seen = SeenVersions(path)
    odd = Name([b"a b", b"\n\x00\xff"])  # any bytes: the name is written in its URI form
    seen.record(DOC, 1, vid(1))
    seen.record(odd, 7, vid(7))
    seen.close()
    with open(path, "a", encoding="ascii") as f:
        f.write("3 " + vid(3).hex()[:20])  # a crash mid-append
    (tmp_path / "versions.tmp.123").write_text("a rewrite cut short")
    again = SeenVersions(path)
    assert not (tmp_path / "versions.tmp.123").exists()
    assert list(again.newest_first(DOC)) == [(1, vid(1))]
    assert again.get(odd, 7) == vid(7)
    again.record(DOC, 4, vid(4))  # must not join the torn bytes into one malformed line
    again.close()
    third = SeenVersions(path)
    assert third.get(DOC, 4) == vid(4)
    third.close()


@pytest.mark.parametrize(
    "line",
    [
        "x " + "00" * 32 + " /doc\n",
        "1 " + "00" * 31 + " /doc\n",
        "1 " + "zz" * 32 + " /doc\n",
        "1 " + "00" * 32 + " doc\n",
        "1 " + "00" * 32 + " /doc/v3\n",  # a ref name has no version component
        "1 " + "00" * 32 + " /\n",
        "0 " + "00" * 32 + " /doc\n",  # versions start at 1
        "1 " + "00" * 32 + "\n",
        "9" * 40 + " " + "00" * 32 + " /doc\n",
        "\n",
    ],
)
def test_malformed_lines_are_skipped(tmp_path: Path, line: str) -> None:
    path = tmp_path / "versions"
    path.write_text(line + "2 " + vid(2).hex() + " /doc\n")
    seen = SeenVersions(path)
    assert list(seen.newest_first(DOC)) == [(2, vid(2))]
    seen.close()


def test_bounded_oldest_first_and_the_log_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "versions"
    seen = SeenVersions(path, max_entries=4)
    for n in range(1, 12):
        seen.record(DOC, n, vid(n))
    assert [n for n, _ in seen.newest_first(DOC)] == [11, 10, 9, 8]
    lines = path.read_text().splitlines()
    assert len(lines) <= 2 * 4 + 1  # rewritten when it passed twice the live entries
    seen.close()
    again = SeenVersions(path, max_entries=4)
    assert [n for n, _ in again.newest_first(DOC)] == [11, 10, 9, 8]
    again.close()


def test_many_versions_of_one_name_stay_in_order_as_the_oldest_leave(tmp_path: Path) -> None:
    seen = SeenVersions(tmp_path / "versions", max_entries=50)
    numbers = list(range(1, 201))
    random.Random(7).shuffle(numbers)  # recorded in any order
    for n in numbers:
        seen.record(DOC, n, vid(n % 256))
    kept = [n for n, _ in seen.newest_first(DOC)]
    assert kept == sorted(numbers[-50:], reverse=True)  # the last 50 recorded, newest first
    seen.close()


def test_a_name_whose_versions_all_left_is_forgotten(tmp_path: Path) -> None:
    seen = SeenVersions(tmp_path / "versions", max_entries=2)
    seen.record(DOC, 1, vid(1))
    other = Name.parse("/other")
    seen.record(other, 1, vid(5))
    seen.record(other, 2, vid(6))
    assert list(seen.newest_first(DOC)) == [] and len(seen) == 2
    seen.close()


def test_a_log_that_is_a_directory_does_not_stop_the_node(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    seen = SeenVersions(tmp_path / "versions")
    assert seen.record(DOC, 1, vid(1)) and seen.write_errors > 0
    seen.close()


_SHORT_WRITE = """
import resource, signal, sys
from pathlib import Path
from ccn.name import Name
from ccn.store.seen import SeenVersions

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
path, doc = Path(sys.argv[1]), Name.parse("/doc")
seen = SeenVersions(path)
seen.record(doc, 1, bytes([1]) * 32)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 30, hard))
seen.record(doc, 2, bytes([2]) * 32)  # the file can take 30 bytes of this line
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
seen.record(doc, 3, bytes([3]) * 32)
print(seen.write_errors)
seen.close()
"""


def test_a_line_the_disk_took_only_part_of_does_not_take_the_next_one_with_it(
    tmp_path: Path,
) -> None:
    # A disk that fills mid-line makes write() short, not fail: the torn line stayed, the
    # next line was appended to it, and both were lost at the next start. The file size
    # limit of a child process gives a real short write (as a full disk does), without root.
    path = tmp_path / "versions"
    got = subprocess.run(
        [sys.executable, "-c", _SHORT_WRITE, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert got.stdout == "1\n"  # the short write is counted as a write error
    assert all(line.count(" ") == 2 for line in path.read_text().splitlines())
    seen = SeenVersions(path)
    assert list(seen.newest_first(DOC)) == [(3, vid(3)), (1, vid(1))]
    seen.close()
