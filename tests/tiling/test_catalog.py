import numpy as np
import pandas as pd
import pytest
import rasterio

from tiling.catalog import Pair, pair_files, read_catalog, summarize_catalogs
from tiling.errors import CatalogError


@pytest.fixture
def tif(make_geotiff):
    # 100x100, 2 m pixels, UTM 17N, top-left corner at (500000, 4000000)
    return make_geotiff(
        "a.tif", np.zeros((100, 100), np.uint8), transform=(2, 0, 500000, 0, -2, 4000000)
    )


def write_csv(path, **cols):
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def test_pixel(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", x=[10.5, 20], y=[5, 6], diameter=[3, 4])
    df = read_catalog(csv, tif)
    assert df.x.tolist() == [10.5, 20] and df.label.tolist() == ["object"] * 2


def test_map_and_metres(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", e=[500021.0], n=[3999979.0], d=[0.01])
    df = read_catalog(
        csv, tif, columns={"x": "e", "y": "n", "diameter": "d"}, coords="map", diameter_unit="km"
    )
    assert df.x[0] == pytest.approx(10.5) and df.y[0] == pytest.approx(10.5)
    assert df.diameter[0] == pytest.approx(5.0)


def test_lonlat_round_trip_utm(tif, tmp_path):
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32617", "EPSG:4326", always_xy=True).transform(
        500041, 3999959
    )
    csv = write_csv(tmp_path / "a.csv", lon=[lon], lat=[lat], d=[4])
    df = read_catalog(
        csv,
        tif,
        columns={"x": "lon", "y": "lat", "diameter": "d"},
        coords="lonlat",
        diameter_unit="m",
    )
    assert df.x[0] == pytest.approx(20.5, abs=1e-6) and df.diameter[0] == pytest.approx(2)


def test_neon_boxes(neon_csv, neon_tif, tmp_path):
    df = read_catalog(neon_csv, neon_tif)
    raw = pd.read_csv(neon_csv)
    assert len(df) == 61
    np.testing.assert_allclose(df.x, (raw.xmin + raw.xmax) / 2)
    np.testing.assert_allclose(df.diameter, ((raw.xmax - raw.xmin) + (raw.ymax - raw.ymin)) / 2)
    with rasterio.open(neon_tif) as ds:
        e, n = ds.transform * (float(df.x[0]), float(df.y[0]))
    csv = write_csv(tmp_path / "m.csv", x=[e], y=[n], diameter=[1.0])
    back = read_catalog(csv, neon_tif, coords="map")
    assert back.x[0] == pytest.approx(df.x[0]) and back.y[0] == pytest.approx(df.y[0])


def test_one_based(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", x=[1.0], y=[1.0], diameter=[2])
    assert read_catalog(csv, tif, one_based=True).x[0] == 0.5


def test_errors(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", x=[1, 2], y=[1, 2], size=[2, 2])
    with pytest.raises(CatalogError, match=r"missing column.*'diameter'.*columns="):
        read_catalog(csv, tif)
    csv = write_csv(tmp_path / "b.csv", x=[1, "abc"], y=[1, 2], diameter=[2, 2])
    with pytest.raises(CatalogError, match=r"b.csv: row 3, column 'x'"):
        read_catalog(csv, tif)
    csv = write_csv(tmp_path / "c.csv", x=[1, 2], y=[1, 2], diameter=[2, 0])
    with pytest.raises(CatalogError, match=r"row 3.*not positive"):
        read_catalog(csv, tif)


def test_outside_dropped_with_warning(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", x=[1, 500], y=[1, 2], diameter=[2, 2])
    with pytest.warns(UserWarning, match="dropped 1 objects"):
        assert len(read_catalog(csv, tif)) == 1


def test_pair_files(tmp_path):
    (tmp_path / "im").mkdir(), (tmp_path / "ds").mkdir()
    for n in ("a.tif", "b.fits"):
        (tmp_path / "im" / n).touch()
    for n in ("a.csv", "b.csv"):
        (tmp_path / "ds" / n).touch()
    pairs = pair_files(tmp_path / "im", tmp_path / "ds")
    assert pairs[0] == Pair("a", tmp_path / "im" / "a.tif", tmp_path / "ds" / "a.csv")
    assert pair_files(tmp_path / "im", tmp_path / "ds", ["b.fits"], ["a.csv"])[0].name == "b"
    (tmp_path / "ds" / "c.csv").touch()
    with pytest.raises(CatalogError, match="c.csv"):
        pair_files(tmp_path / "im", tmp_path / "ds")
    with pytest.raises(CatalogError, match="missing files"):
        pair_files(tmp_path / "im", tmp_path / "ds", ["x.tif"], ["a.csv"])


def test_summary(neon_csv, neon_tif):
    s = summarize_catalogs({"osbs": read_catalog(neon_csv, neon_tif)})
    assert s["count"].tolist() == [61]
