"""``raster-detect tiles``: the notebook's sections 1 and 2 from the command line."""

import json

import pytest

from tests.cli_runner import assert_one_line_error, run_cli, write_square_data
from tiling.catalog.collect import read_catalogs
from tiling.store import TileStore
from tiling.store.build import build_tile_store
from tiling.store.parameters import StoreParameters

OPTIONS = ["--tile-size", "64", "--overlap", "8", "--split", "raster", "--workers", "0"]


@pytest.fixture
def data(tmp_path):
    return write_square_data(tmp_path / "data")


def tiles(capsys, data, tiles_dir, *extra):
    folders = [
        "--images-dir",
        data / "images",
        "--datasets-dir",
        data / "datasets",
        "--tiles-dir",
        tiles_dir,
    ]
    return run_cli(capsys, "tiles", *folders, *OPTIONS, *extra)


def test_builds_the_store_the_notebook_builds(tmp_path, capsys, data):
    code, err = tiles(
        capsys, data, tmp_path / "tiles", "--test-rasters", "[c]", "--min-diameter", "9"
    )
    assert code == 0, err
    (store_dir,) = [p for p in (tmp_path / "tiles").iterdir() if not p.name.startswith(".")]
    store = TileStore(store_dir)
    assert set(store.tiles["raster"]) == {"a", "b", "c"}
    assert set(store.tiles.loc[store.tiles["raster"] == "c", "split"]) == {"test"}
    assert store.boxes["diameter"].min() >= 9
    params = StoreParameters(
        images_dir=str(data / "images"), datasets_dir=str(data / "datasets"), tiles_dir=str(tmp_path / "tiles"),
        tile_size=64, overlap=8, split="raster", workers=0, test_rasters=["c"], min_diameter=9.0,
    )  # fmt: skip
    again = build_tile_store(
        read_catalogs(**params.catalog_arguments()).sources(), **params.store_arguments()
    )
    assert again.path == store_dir  # the same parameters give the same store, reused
    assert json.loads((store_dir / "meta.json").read_text())["params"]["tile_size"] == 64


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--tile-size", "0"], "argument --tile-size: '0' is not a positive whole number"),
        (["--overlap", "-1"], "argument --overlap: '-1' is negative"),
        (["--workers", "-1"], "argument --workers: '-1' is negative"),
        (["--max-nodata", "nan"], "argument --max-nodata: 'nan' is not a number between 0 and 1"),
        (["--keep-empty", "2"], "argument --keep-empty: '2' is not a number between 0 and 1"),
        (
            ["--min-visible", "-0.5"],
            "argument --min-visible: '-0.5' is not a number between 0 and 1",
        ),
        (["--max-diameter", "0"], "argument --max-diameter: '0' is not a finite number above 0"),
        (["--split-fractions", "[0.7, x]"], "argument --split-fractions: 'x' is not a number"),
        (["--columns", "[x]"], "argument --columns: '[x]' is not a mapping"),
        (["--overlap", "64"], "overlap=64 must be >= 0 and smaller than tile_size=64"),
        (
            ["--test-rasters", "[crater_field_b]"],
            "test_rasters ['crater_field_b'] are not among the rasters",
        ),
    ],
)
def test_bad_options_are_one_line_and_build_nothing(tmp_path, capsys, data, extra, fragment):
    assert_one_line_error(*tiles(capsys, data, tmp_path / "tiles", *extra), fragment)
    assert not any((tmp_path / "tiles").glob("*/meta.json"))


def test_tiles_dir_that_is_a_file_is_refused(tmp_path, capsys, data):
    (tmp_path / "tiles").write_text("not a folder")
    code, err = tiles(capsys, data, tmp_path / "tiles", "--test-rasters", "[]")
    assert_one_line_error(
        code, err, f"--tiles-dir {tmp_path / 'tiles'} is a regular file, not a folder"
    )
    assert (tmp_path / "tiles").read_text() == "not a folder"
