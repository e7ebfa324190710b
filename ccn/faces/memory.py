"""In-memory face pairs for tests: two stream faces joined by a trio memory stream pair."""

from __future__ import annotations

import trio.testing

from ccn.faces.stream import StreamFace


def memory_face_pair(*, local: tuple[bool, bool] = (False, False)) -> tuple[StreamFace, StreamFace]:
    a, b = trio.testing.memory_stream_pair()
    return (
        StreamFace(a, "memory://a", local=local[0]),
        StreamFace(b, "memory://b", local=local[1]),
    )
