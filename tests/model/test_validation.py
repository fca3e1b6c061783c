import dataclasses
import math
from typing import Annotated, Any, Literal

import pytest

from model.validation import Range, config_error, validate_fields
from tiling.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Example:
    mode: Literal["a", "b"] = "a"
    count: Annotated[int, Range(1)] = 1
    ratio: Annotated[float, Range(0.0, 1.0, open_low=True)] = 0.5
    maybe: Annotated[int, Range(0)] | None = None
    names: list[str] = dataclasses.field(default_factory=list)
    values: list[float] | None = None
    flag: bool = False
    text: str = "x"
    choice_or_none: Literal["x"] | None = None
    free: Any = None
    table: dict[str, Any] | None = None

    def __post_init__(self):
        validate_fields(self)


def test_valid_values_pass():
    Example(mode="b", count=3, ratio=1, maybe=0, names=["a"], values=[1, 2.5], flag=True)
    Example(choice_or_none="x", free=object(), table={"k": [1]})


@pytest.mark.parametrize(
    ("changes", "allowed"),
    [
        ({"mode": "c"}, "one of ['a', 'b']"),
        ({"mode": 1}, "one of ['a', 'b']"),
        ({"count": 0}, "an integer >= 1"),
        ({"count": 2.0}, "an integer >= 1"),
        ({"count": True}, "an integer >= 1"),
        ({"ratio": 0.0}, "a finite number in (0.0, 1.0]"),
        ({"ratio": math.nan}, "a finite number in (0.0, 1.0]"),
        ({"ratio": "0.5"}, "a finite number in (0.0, 1.0]"),
        ({"maybe": -1}, "None or an integer >= 0"),
        ({"names": ["a", 2]}, "a list of strings"),
        ({"names": "ab"}, "a list of strings"),
        ({"values": [1.0, math.inf]}, "None or a list of finite numbers"),
        ({"flag": 1}, "true or false"),
        ({"text": None}, "a string"),
        ({"choice_or_none": "y"}, "None or one of ['x']"),
    ],
)
def test_each_annotation_is_checked(changes, allowed):
    ((field, value),) = changes.items()
    with pytest.raises(ConfigError) as info:
        Example(**changes)
    assert str(info.value).startswith(f"Example.{field}={value!r} is invalid: expected {allowed}")


def test_a_number_written_as_a_string_is_named():
    message = str(config_error("C", "lr", "1e-3", "a number"))
    assert "a string, not a number" in message and "1e-3" in message
    assert "a string, not a number" not in str(config_error("C", "mode", "fast", "one of"))


def test_range_descriptions():
    assert Range(1).describe("an integer") == "an integer >= 1"
    assert Range(0.0, open_low=True).describe("a number") == "a number > 0.0"
    assert Range(0.0, 1.0).describe("a number") == "a number in [0.0, 1.0]"
    assert Range(0.0, 1.0).holds(1.0) and not Range(0.0, 1.0, open_low=True).holds(0.0)
