import argparse
import dataclasses

import pytest

from tiling import options as o
from tiling.errors import ConfigError
from tiling.parameters import add_options, describe, from_mapping, from_namespace, param, to_mapping


@dataclasses.dataclass(frozen=True)
class Toy:
    tile_size: int = param(256, "tile side", o.positive_int, unit="px")
    names: list[str] = param(["a"], "raster names", o.list_of(o.text))
    one_based: bool = param(False, "count from 1", o.flag)
    ratio: float = param(0.5, "share, 50% by default", o.probability)


def parser():
    p = argparse.ArgumentParser(exit_on_error=False)
    add_options(p, Toy)
    return p


def test_options_have_the_defaults_units_and_checks():
    p = parser()
    assert from_namespace(Toy, p.parse_args([])) == Toy()
    args = p.parse_args(["--tile-size", "64", "--names", "[b, c]", "--one-based", "--ratio", "1"])
    assert from_namespace(Toy, args) == Toy(64, ["b", "c"], True, 1.0)
    text = p.format_help()
    assert "tile side [px] (default: 256)" in text
    assert "(default: ['a'])" in text and "50% by default" in text
    assert "--one-based, --no-one-based" in text and "count from 1 (default: False)" in text


def test_defaults_are_not_shared_between_instances():
    first = Toy()
    first.names.append("x")
    assert Toy().names == ["a"]


def test_from_mapping_checks_every_value_and_names_file_and_key():
    assert from_mapping(Toy, {"tile_size": "128"}, "run.yaml") == Toy(tile_size=128)
    with pytest.raises(
        ConfigError, match=r"run.yaml: tile_size: '0' is not a positive whole number"
    ):
        from_mapping(Toy, {"tile_size": "0"}, "run.yaml")
    with pytest.raises(
        ConfigError, match=r"run.yaml: unknown parameter\(s\) \['tile_sise'\]; fix the spelling"
    ):
        from_mapping(Toy, {"tile_sise": 64}, "run.yaml")
    with pytest.raises(
        ConfigError, match=r"run.yaml must hold one 'name: value' line per parameter; it holds list"
    ):
        from_mapping(Toy, [1, 2], "run.yaml")


def test_to_mapping_and_describe():
    assert to_mapping(Toy()) == {"tile_size": 256, "names": ["a"], "one_based": False, "ratio": 0.5}
    lines = describe(Toy).splitlines()
    assert len(lines) == 4 and lines[0].split() == [
        "tile_size",
        "tile",
        "side",
        "[px]",
        "(default:",
        "256)",
    ]
