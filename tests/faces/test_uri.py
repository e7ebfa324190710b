from __future__ import annotations

import pytest

from ccn.faces.uri import FaceUri, InvalidUri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:6464", FaceUri("tcp", host="127.0.0.1", port=6464)),
        ("tcp://[::1]:1", FaceUri("tcp", host="::1", port=1)),
        ("unix:///run/ccn.sock", FaceUri("unix", path="/run/ccn.sock")),
    ],
)
def test_parse_and_print(text: str, expected: FaceUri) -> None:
    uri = FaceUri.parse(text)
    assert uri == expected
    assert str(uri) == text


@pytest.mark.parametrize(
    "text", ["", "tcp://host", "tcp://:5", "unix://", "http://x:1", "tcp://h:99999"]
)
def test_rejects(text: str) -> None:
    with pytest.raises(InvalidUri):
        FaceUri.parse(text)
