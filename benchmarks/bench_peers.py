"""What a node pays to learn whether a loopback TCP peer is local (``ccn.faces.peers``), once per
accepted connection: the kernel asked for the one connection by ``NETLINK_SOCK_DIAG``, against
reading ``/proc/net/tcp`` (what the node did before, and still does where netlink cannot be
asked), with N other connections open on this host. Reading the table grows with N, on the
node's event loop; the exact lookup does not.

    python benchmarks/bench_peers.py [--others 0 500 2000] [--lookups 300] [--no-write]
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import time
from typing import Any

from _common import command_line, machine_info, machine_line, write_results

from ccn.faces import peers


def _timed(lookup: Any, ends: Any, count: int) -> tuple[float, int | None]:
    """Median µs of one lookup over 5 rounds of ``count``, and what it found."""
    rounds = []
    found = None
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(count):
            found = lookup(ends)
        rounds.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(rounds), found


def measure(others: list[int], lookups: int) -> list[dict[str, Any]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * max(others) + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    rows = []
    held: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4096)
        try:
            for n in sorted(others):
                while len(held) < 2 * n:  # both ends of each other connection
                    client = socket.create_connection(listener.getsockname())
                    held += [client, listener.accept()[0]]
                with socket.create_connection(listener.getsockname()) as client:
                    server, _ = listener.accept()
                    with server:
                        ours, theirs = server.getsockname(), server.getpeername()
                        ends = peers._candidates(ours[0], ours[1], theirs[0], theirs[1])
                        diag, by_diag = _timed(peers._owner_by_netlink, ends, lookups)
                        proc, by_proc = _timed(peers._owner_by_proc, ends, max(1, lookups // 10))
                assert by_diag == by_proc, (by_diag, by_proc)
                rows.append(
                    {
                        "other_connections": n,
                        "sock_diag_us": round(diag, 1),
                        "proc_net_tcp_us": round(proc, 1),
                        "owner": by_diag,
                    }
                )
        finally:
            for s in held:
                s.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| other connections open | sock_diag, µs per lookup | /proc/net/tcp, µs per lookup |",
        "|---:|---:|---:|",
    ]
    for r in rows:
        n, diag, proc = r["other_connections"], r["sock_diag_us"], r["proc_net_tcp_us"]
        lines.append(f"| {n:,} | {diag:,.1f} | {proc:,.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--others", type=int, nargs="+", default=[0, 500, 2000])
    p.add_argument("--lookups", type=int, default=300, help="sock_diag lookups per round")
    p.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = p.parse_args(argv)
    rows = measure(args.others, args.lookups)
    text = table(rows)
    print(text)
    if not args.no_write:
        m = machine_info()
        md = (
            "# Local-peer lookup per accepted connection\n\n"
            f"{machine_line(m)}\n\n`{command_line()}`\n\n{text}"
        )
        data = {"machine": m, "command": command_line(), "rows": rows}
        js, mdp = write_results("peers", data, md)
        print(f"wrote {js} and {mdp}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
