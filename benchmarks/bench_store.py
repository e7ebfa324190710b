"""Benchmark: storing a file in the object store, against cp and git, and chunk-size choice.

Measures, in one run on one file system, the wall-clock throughput of

* ``ccn``: ``import_file`` into a fresh :class:`DiskObjectStore` (chunk + hash + write), without
  fsync and with fsync (the latter on a smaller file: it costs a few ms per object here);
* ``cp FILE`` to the same file system;
* ``git hash-object -w FILE`` into a fresh repository;
* and for a directory of many small files (1 KiB each, 1000 per subdirectory): ``import_dir``,
  ``cp -r`` and ``git add -A`` into a fresh repository;

repeated ``--runs`` times in rotating order, reporting medians, and ratios computed within each
run (timings on shared machines are noisy; ratios less so). Then it compares average chunk sizes
(throughput, and new bytes stored after a 1 % edit) to justify the chunker's constant.

Results go to ``benchmarks/results/store.{json,md}``. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccn.store.chunker import Chunker
from ccn.store.files import import_dir, import_file
from ccn.store.objstore import DiskObjectStore
from ccn.testing import edit_one_percent

MIB = 1 << 20
RESULTS = Path(__file__).resolve().parent / "results"

#: The directory case before small files skipped the thread pipeline (ccn/store/files.py,
#: SMALL_FILE_MAX): commit 07fa5c6, `bench_store.py --parts tree` (tmpfs), 4000 files, medians
#: of 3 runs.
BEFORE_SMALL_FILES: dict[str, Any] = {
    "date": "2026-11-26 10:49",
    "files_per_s": {"cp -r": 34938, "git add -A": 4485, "ccn put (no fsync)": 921},
    "ccn_vs_cp": 0.025,
}

#: The same benchmark before pack files (one file per object), kept for comparison:
#: benchmarks/results/store.md of commit 9f5c562, 1024 MiB, median of 3 runs.
BEFORE_PACKS: dict[str, Any] = {
    "date": "2026-11-26 03:52",
    "mib_per_s": {"cp": 479.2, "ccn put (no fsync)": 112.7, "ccn put (fsync) (64 MiB)": 50.5},
    "ccn_vs_cp": 0.22,
    "ccn_vs_git": 5.1,
}


def _make_file(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MIB)
            f.write(rng.randbytes(n))
            left -= n


def _warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as f:
        while f.read(16 * MIB):
            pass


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def _ccn(src: Path, dest: Path, fsync: bool, chunker: Chunker | None = None) -> DiskObjectStore:
    store = DiskObjectStore(dest, fsync=fsync)
    if chunker is None:
        import_file(store, src)
    else:
        import_file(store, src, chunker=chunker)
    return store


def _machine(work: Path) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = subprocess.run(
        ["stat", "-f", "-c", "%T", str(work)], capture_output=True, text=True, check=False
    ).stdout.strip()
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False)
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "filesystem": fs,
        "git": git.stdout.strip(),
        "loadavg_at_start": os.getloadavg(),
    }


def bench_put(work: Path, size_mib: int, fsync_mib: int, runs: int) -> dict[str, Any]:
    src = work / "input.bin"
    _make_file(src, size_mib * MIB, seed=1)
    small = work / "input-fsync.bin"
    _make_file(small, fsync_mib * MIB, seed=2)
    _warm(src)
    _warm(small)
    methods: dict[str, Callable[[Path], object]] = {
        "cp": lambda d: _run(["cp", str(src), str(d)]),
        "git hash-object -w": lambda d: _run(["git", "-C", str(d), "hash-object", "-w", str(src)]),
        "ccn put (no fsync)": lambda d: _ccn(src, d, fsync=False),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    order = list(methods)
    for r in range(runs):
        for m in order[r % len(order) :] + order[: r % len(order)]:
            dest = work / f"run{r}-{m.split()[0]}"
            if m.startswith("git"):
                _run(["git", "init", "-q", str(dest)])
            # No deletion between measurements: on file systems mounted with `discard`
            # a large rm slows the next writer down.
            times[m].append(_timed(functools.partial(methods[m], dest)))
            print(f"  run {r + 1}: {m}: {size_mib / times[m][-1]:.0f} MiB/s", flush=True)
    fsync_time = _timed(lambda: _ccn(small, work / "fsync-store", fsync=True))
    print(f"  ccn put (fsync), {fsync_mib} MiB: {fsync_mib / fsync_time:.1f} MiB/s", flush=True)

    def median_rate(m: str) -> float:
        return statistics.median(size_mib / t for t in times[m])

    def median_ratio(a: str, b: str) -> float:
        return statistics.median(times[b][i] / times[a][i] for i in range(runs))

    return {
        "size_mib": size_mib,
        "runs": runs,
        "mib_per_s": {m: round(median_rate(m), 1) for m in methods}
        | {"ccn put (fsync)": round(fsync_mib / fsync_time, 1)},
        "fsync_size_mib": fsync_mib,
        "seconds": {m: [round(t, 3) for t in ts] for m, ts in times.items()},
        "ccn_vs_cp": round(median_ratio("ccn put (no fsync)", "cp"), 3),
        "ccn_vs_git": round(median_ratio("ccn put (no fsync)", "git hash-object -w"), 2),
    }


def _make_tree(root: Path, files: int, size: int) -> None:
    rng = random.Random(5)
    for i in range(files):
        d = root / f"d{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(rng.randbytes(size))


def bench_tree(work: Path, files: int, runs: int) -> dict[str, Any]:
    """A directory of ``files`` 1 KiB files: files/s of import_dir, ``cp -r`` and ``git add``.

    ``work`` should be a tmpfs: on this machine's ext4 (no journal), creating inodes slows down
    by 10x or more after many files were deleted (the inode allocator skips recently deleted
    inodes), which would measure the file system's history rather than the three programs."""
    src = work / "tree"
    _make_tree(src, files, 1024)

    def git_add(d: Path) -> None:
        _run(["git", "init", "-q", str(d)])
        _run(["git", "-C", str(d), "--work-tree", str(src), "add", "-A"])

    methods: dict[str, Callable[[Path], object]] = {
        "cp -r": lambda d: _run(["cp", "-r", str(src), str(d)]),
        "git add -A": git_add,
        "ccn put (no fsync)": lambda d: import_dir(DiskObjectStore(d, fsync=False), src),
    }
    times: dict[str, list[float]] = {m: [] for m in methods}
    order = list(methods)
    for r in range(runs):
        for m in order[r % len(order) :] + order[: r % len(order)]:
            dest = work / f"tree-run{r}-{m.split()[0]}"
            times[m].append(_timed(functools.partial(methods[m], dest)))
            print(f"  run {r + 1}: {m}: {files / times[m][-1]:,.0f} files/s", flush=True)
    return {
        "files": files,
        "file_size": 1024,
        "runs": runs,
        "files_per_s": {
            m: round(statistics.median(files / t for t in ts)) for m, ts in times.items()
        },
        "seconds": {m: [round(t, 3) for t in ts] for m, ts in times.items()},
        "ccn_vs_cp": round(
            statistics.median(
                times["cp -r"][i] / times["ccn put (no fsync)"][i] for i in range(runs)
            ),
            3,
        ),
    }


def bench_chunk_sizes(work: Path, size_mib: int) -> list[dict[str, Any]]:
    src = work / "chunks-v1.bin"
    _make_file(src, size_mib * MIB, seed=3)
    edited = work / "chunks-v2.bin"
    edited.write_bytes(edit_one_percent(src.read_bytes(), seed=4))
    _warm(src)
    rows = []
    for avg_kib in (16, 32, 64):
        avg = avg_kib * 1024
        chunker = Chunker(avg_size=avg, min_size=avg // 4, max_size=avg * 4)
        dest = work / f"chunks-{avg_kib}"
        store = DiskObjectStore(dest, fsync=False)
        elapsed = _timed(functools.partial(import_file, store, src, chunker=chunker))
        before = store.stats()
        import_file(store, edited, chunker=chunker)
        after = store.stats()
        rows.append(
            {
                "avg_kib": avg_kib,
                "mib_per_s": round(size_mib / elapsed, 1),
                "objects": before.objects,
                "mean_chunk_kib": round(before.bytes / before.objects / 1024, 1),
                "new_bytes_after_1pct_edit_pct": round(
                    100 * (after.bytes - before.bytes) / (size_mib * MIB), 2
                ),
            }
        )
        print(f"  avg {avg_kib} KiB: {rows[-1]}", flush=True)
    return rows


def _markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Object store benchmark",
        "",
        f"Command: `{result['command']}`  ",
        f"Date: {result['date']}  ",
        "Machine: " + ", ".join(f"{k}={v}" for k, v in result["machine"].items()),
        "",
    ]
    if "put" in result:
        lines += _put_markdown(result["put"])
    if "tree" in result:
        lines += _tree_markdown(result["tree"])
    if "chunk_sizes" in result:
        lines += _chunks_markdown(result)
    return "\n".join(lines) + "\n"


def _tree_markdown(tree: dict[str, Any]) -> list[str]:
    before = BEFORE_SMALL_FILES
    lines = [
        f"## put of a directory of {tree['files']:,} files of {tree['file_size']} bytes "
        f"(median of {tree['runs']} runs)",
        "",
        "| method | files/s |",
        "|---|---:|",
    ]
    lines += [f"| {m} | {rate:,} |" for m, rate in tree["files_per_s"].items()]
    lines += [
        "",
        f"ccn (no fsync) / cp -r: **{tree['ccn_vs_cp']:.2f}** (median of per-run ratios).",
        "",
        f"Before small files skipped the thread pipeline ({before['date']}, same machine): "
        + ", ".join(f"{m} {r:,} files/s" for m, r in before["files_per_s"].items())
        + f"; ccn / cp -r **{before['ccn_vs_cp']:.2f}**.",
        "",
    ]
    return lines


def _put_markdown(put: dict[str, Any]) -> list[str]:
    lines = [
        f"## put of a {put['size_mib']} MiB random file (median of {put['runs']} runs)",
        "",
        "| method | MiB/s |",
        "|---|---:|",
    ]
    for m, rate in put["mib_per_s"].items():
        note = f" ({put['fsync_size_mib']} MiB file)" if m == "ccn put (fsync)" else ""
        lines.append(f"| {m}{note} | {rate} |")
    lines += [
        "",
        f"ccn (no fsync) / cp: **{put['ccn_vs_cp']:.2f}** (target >= 0.40); "
        f"ccn (no fsync) / git: **{put['ccn_vs_git']:.1f}x** (target >= 5x). "
        "Ratios are medians of per-run ratios.",
        "",
        f"Before pack files (one file per object; {BEFORE_PACKS['date']}, same machine): "
        + ", ".join(f"{m} {r} MiB/s" for m, r in BEFORE_PACKS["mib_per_s"].items())
        + f"; ccn / cp **{BEFORE_PACKS['ccn_vs_cp']:.2f}**, ccn / git "
        f"**{BEFORE_PACKS['ccn_vs_git']:.1f}x**. A bulk import now writes one pack file plus "
        "an index instead of one file per object (docs/store.md §4).",
        "",
    ]
    return lines


def _chunks_markdown(result: dict[str, Any]) -> list[str]:
    lines = [
        f"## Chunk size ({result['chunk_size_mib']} MiB file, then a 1 % edit at 8 places)",
        "",
        "| avg (min = avg/4, max = 4 avg) | MiB/s | objects | mean chunk KiB "
        "| new bytes after edit, % of file |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result["chunk_sizes"]:
        lines.append(
            f"| {row['avg_kib']} KiB | {row['mib_per_s']} | {row['objects']} | "
            f"{row['mean_chunk_kib']} | {row['new_bytes_after_1pct_edit_pct']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the test file")
    parser.add_argument("--fsync-mib", type=int, default=64, help="file size for the fsync run")
    parser.add_argument("--chunk-mib", type=int, default=256, help="file size, chunk comparison")
    parser.add_argument("--runs", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--dir", type=Path, default=None, help="work dir (default: under /tmp)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where store.{json,md} go")
    parser.add_argument("--tree-files", type=int, default=4000, help="files, directory case")
    parser.add_argument(
        "--tree-dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="work dir of the directory case (default: /dev/shm, a tmpfs, see bench_tree)",
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["put", "tree", "chunks"],
        choices=["put", "tree", "chunks"],
        help="which measurements to run (all by default)",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ccn-bench-store-", dir=args.dir or "/tmp"))
    try:
        result: dict[str, Any] = {
            "command": shlex.join([sys.executable, *sys.argv]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "machine": _machine(work),
            "before_pack_files": BEFORE_PACKS,
        }
        if "put" in args.parts:
            print(f"put, {args.size_mib} MiB, {args.runs} runs, in {work}", flush=True)
            result["put"] = bench_put(work, args.size_mib, args.fsync_mib, args.runs)
        if "tree" in args.parts:
            print(f"directory, {args.tree_files} files, {args.runs} runs", flush=True)
            tree_work = Path(tempfile.mkdtemp(prefix="ccn-bench-tree-", dir=args.tree_dir or work))
            try:
                result["tree"] = bench_tree(tree_work, args.tree_files, args.runs)
            finally:
                shutil.rmtree(tree_work, ignore_errors=True)
        if "chunks" in args.parts:
            print(f"chunk sizes, {args.chunk_mib} MiB", flush=True)
            result["chunk_size_mib"] = args.chunk_mib
            result["chunk_sizes"] = bench_chunk_sizes(work, args.chunk_mib)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = _markdown(result)
    print()
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "store.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
