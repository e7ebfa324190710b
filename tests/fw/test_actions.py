from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ccn.fw.actions import (
    DataIn,
    FaceDown,
    FaceUnreachable,
    FaceUp,
    InterestIn,
    NackIn,
    SendData,
    SendInterest,
    SendNack,
    Tick,
)
from ccn.name import Name
from ccn.packet import Data, Interest, Nack, NackReason

INTEREST = Interest(Name.parse("/a"), 1)


@pytest.mark.parametrize(
    "value",
    [
        FaceUp(1, local=True),
        FaceDown(1),
        FaceUnreachable(1),
        InterestIn(1, INTEREST),
        DataIn(1, Data(Name.parse("/a"), b"")),
        NackIn(1, Nack(INTEREST, NackReason.NO_ROUTE)),
        Tick(),
        SendInterest(1, INTEREST),
        SendData(1, Data(Name.parse("/a"), b"")),
        SendNack(1, Nack(INTEREST, NackReason.DUPLICATE)),
    ],
)
def test_events_and_actions_are_frozen_slotted_values(value: Any) -> None:
    assert not hasattr(value, "__dict__")
    assert value == dataclasses.replace(value)
    fields = dataclasses.fields(value)
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, fields[0].name, 0)


def test_face_up_defaults_to_non_local() -> None:
    assert FaceUp(3).local is False
