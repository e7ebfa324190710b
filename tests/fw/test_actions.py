from __future__ import annotations

import dataclasses

import pytest

from ccn.fw.actions import (
    DataIn,
    FaceDown,
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

I = Interest(Name.parse("/a"), 1)


@pytest.mark.parametrize(
    "value",
    [
        FaceUp(1, local=True),
        FaceDown(1),
        InterestIn(1, I),
        DataIn(1, Data(Name.parse("/a"), b"")),
        NackIn(1, Nack(I, NackReason.NO_ROUTE)),
        Tick(),
        SendInterest(1, I),
        SendData(1, Data(Name.parse("/a"), b"")),
        SendNack(1, Nack(I, NackReason.DUPLICATE)),
    ],
)
def test_events_and_actions_are_frozen_slotted_values(value: object) -> None:
    assert not hasattr(value, "__dict__")
    assert dataclasses.is_dataclass(value)
    assert value == dataclasses.replace(value)  # type: ignore[type-var]
    fields = dataclasses.fields(value)  # type: ignore[arg-type]
    if fields:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, fields[0].name, 0)


def test_face_up_defaults_to_non_local() -> None:
    assert FaceUp(3).local is False
