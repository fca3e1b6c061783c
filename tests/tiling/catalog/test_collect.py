import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_geotiff
from tiling.catalog.collect import clean_catalog, read_catalogs
from tiling.errors import CatalogError


@pytest.fixture
def data(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("a", "b"):
        write_geotiff(tmp_path / "images" / f"{name}.tif", np.zeros((1, 64, 64), np.uint8))
    (tmp_path / "datasets").mkdir()
    rows = {"x": [10, 20, 30, 30.1], "y": [10, 20, 30, 30.1], "diameter": [2, 8, 40, 40]}
    pd.DataFrame(rows).to_csv(tmp_path / "datasets" / "a.csv", index=False)
    pd.DataFrame({"x": [5], "y": [5], "diameter": [6]}).to_csv(
        tmp_path / "datasets" / "b.csv", index=False
    )
    return tmp_path


def test_read_catalogs_pairs_reads_and_cleans_every_catalogue(data):
    out = read_catalogs(
        data / "images", data / "datasets", [], [], columns={}, min_diameter=4, max_diameter=50
    )
    assert list(out.catalogs) == ["a", "b"]
    assert out.rasters == {"a": data / "images" / "a.tif", "b": data / "images" / "b.tif"}
    assert out.catalogs["a"]["diameter"].tolist() == [8.0, 40.0]  # 2 px too small, one duplicate
    report = out.report.set_index(["raster", "filter"])["removed"]
    assert report[("a", "min_diameter(4)")] == 1 and report[("a", "max_diameter(50)")] == 0
    assert report.filter(like="drop_duplicates").tolist() == [1, 0]
    assert [(str(r), len(c)) for r, c in out.sources()] == [
        (str(data / "images" / "a.tif"), 2),
        (str(data / "images" / "b.tif"), 1),
    ]


def test_read_catalogs_explicit_pairs_and_errors(data):
    out = read_catalogs(data / "images", data / "datasets", ["b.tif"], ["a.csv"])
    assert list(out.catalogs) == ["b"] and len(out.catalogs["b"]) == 3  # a.csv on b.tif
    with pytest.raises(CatalogError, match="must be lists of the same length"):
        read_catalogs(data / "images", data / "datasets", ["b.tif"], [])


def test_clean_catalog_keeps_the_range_inclusive():
    frame = pd.DataFrame(
        {"x": [0, 100, 200], "y": [0, 0, 0], "diameter": [4.0, 8.0, 9.0], "label": "o"}
    )
    clean, report = clean_catalog(frame, min_diameter=4, max_diameter=8)
    assert clean["diameter"].tolist() == [4.0, 8.0]
    assert report["removed"].tolist() == [0, 1, 0]
