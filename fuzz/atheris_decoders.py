"""Coverage-guided fuzzing of every decoder with atheris (not run in CI; hypothesis covers CI).

    pip install atheris
    python fuzz/atheris_decoders.py -atheris_runs=1000000          # all decoders
    python fuzz/atheris_decoders.py -max_total_time=600 corpus/     # keep a corpus

Any exception other than the decoder's own error type is a bug and stops the run with the input
that caused it (written as crash-<hash> by libFuzzer).
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from ccn import codec
    from ccn.errors import DecodeError, FrameError, InvalidObject
    from ccn.frag import Reassembler
    from ccn.framing import Deframer
    from ccn.ndn import lp as ndn_lp
    from ccn.ndn import packets as ndn
    from ccn.ndn.tlv import NdnDecodeError, NdnFrameError, TlvFramer
    from ccn.store.objects import decode as decode_object


def one_input(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        codec.decode(data)
    with contextlib.suppress(InvalidObject):
        decode_object(data)
    for decoder in (ndn.decode_interest, ndn.decode_data, ndn_lp.decode_lp):
        with contextlib.suppress(NdnDecodeError):
            decoder(data)
    half = len(data) // 2
    with contextlib.suppress(FrameError):
        d = Deframer(max_frame=1 << 16)
        d.feed(data[:half])
        d.feed(data[half:])
    with contextlib.suppress(NdnFrameError):
        t = TlvFramer()
        t.feed(data[:half])
        t.feed(data[half:])
    r = Reassembler(max_packets=4, max_bytes=4096)
    for i in range(0, len(data), 64):
        r.feed(data[i : i + 64], i / 64)
    assert r.pending_bytes <= 4096


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
