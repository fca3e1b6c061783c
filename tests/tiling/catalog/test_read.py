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


def utm_scale(crs, e, n):
    """Point scale factor of a conformal projection at map coordinates ``e, n`` (pyproj)."""
    from pyproj import CRS, Proj, Transformer

    lon, lat = Transformer.from_crs(crs, CRS(crs).geodetic_crs, always_xy=True).transform(e, n)
    return Proj(crs).get_factors(lon, lat).meridional_scale


def test_map_and_metres(tif, tmp_path):
    csv = write_csv(tmp_path / "a.csv", e=[500021.0], n=[3999979.0], d=[0.01])
    df = read_catalog(
        csv, tif, columns={"x": "e", "y": "n", "diameter": "d"}, coords="map", diameter_unit="km"
    )
    assert df.x[0] == pytest.approx(10.5) and df.y[0] == pytest.approx(10.5)
    # 10 m on the ground are 10 m x the UTM scale factor (0.9996 on the central meridian) of
    # 0.5 m pixels
    k = utm_scale("EPSG:32617", 500021.0, 3999979.0)
    assert df.diameter[0] == pytest.approx(10.0 * k / 2, abs=1e-6)
    assert df.width[0] == pytest.approx(df.height[0], abs=1e-6)


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
    k = utm_scale("EPSG:32617", 500041, 3999959)
    assert df.x[0] == pytest.approx(20.5, abs=1e-6) and df.diameter[0] == pytest.approx(2 * k)


def test_neon_boxes(neon_csv, neon_tif, tmp_path):
    df = read_catalog(neon_csv, neon_tif)
    raw = pd.read_csv(neon_csv)
    assert len(df) == 61
    np.testing.assert_allclose(df.x, (raw.xmin + raw.xmax) / 2)
    np.testing.assert_allclose(df.diameter, ((raw.xmax - raw.xmin) + (raw.ymax - raw.ymin)) / 2)
    with rasterio.open(neon_tif) as ds:
        e, n = ds.transform @ (float(df.x[0]), float(df.y[0]))
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


# --- lon/lat through projected and planetary CRSs --------------------------------------------

PIXELS = np.array(
    [[0.5, 0.5], [10.25, 3.75], [39.5, 29.5], [0.01, 29.99]]
)  # (x, y), 40 x 30 raster


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:32633", (30.0, 0.0, 399960.0, 0.0, -30.0, 5300040.0)),  # UTM 33N, 30 m
        ("IAU_2015:30110", (100.0, 0.0, 1.0e6, 0.0, -100.0, 6.0e5)),  # Moon equirectangular
        ("+proj=eqc +a=1737400 +b=1737400 +units=m +no_defs", (50.0, 0, -2.0e5, 0, -50.0, -1.0e5)),
        ("+proj=stere +lat_0=-90 +a=3396190 +b=3376200 +units=m", (200.0, 0, 1e5, 0, -200.0, 3e5)),
    ],
    ids=["utm", "iau-moon", "moon-eqc-proj4", "mars-south-polar"],
)
def test_lonlat_round_trip(make_geotiff, tmp_path, crs, transform):
    from pyproj import CRS, Transformer

    tif = make_geotiff("p.tif", np.zeros((30, 40), np.uint8), crs=crs, transform=transform)
    with rasterio.open(tif) as ds:
        e, n = ds.transform @ (PIXELS[:, 0], PIXELS[:, 1])
        projected = CRS.from_wkt(ds.crs.to_wkt())
    to_ll = Transformer.from_crs(projected, projected.geodetic_crs, always_xy=True)
    lon, lat = to_ll.transform(e, n)
    csv = write_csv(tmp_path / "ll.csv", lon=lon, lat=lat, diameter=[1.0] * 4, label=list("abcd"))
    df = read_catalog(csv, tif, columns={"x": "lon", "y": "lat"}, coords="lonlat")
    np.testing.assert_allclose(df.x, PIXELS[:, 0], atol=1e-6)
    np.testing.assert_allclose(df.y, PIXELS[:, 1], atol=1e-6)
    assert df.label.tolist() == list("abcd")


# --- map coordinates and diameter units ------------------------------------------------------


@pytest.mark.parametrize(("unit", "value"), [("m", 10.0), ("km", 0.01), ("map", 10.0), ("px", 20)])
def test_map_diameter_units(make_geotiff, tmp_path, unit, value):
    # 0.5 m pixels: a 10 m diameter is 20 px in map units, 20 px x the UTM scale factor on the
    # ellipsoid (m, km)
    tif = make_geotiff(
        "m.tif", np.zeros((200, 300), np.uint8), transform=(0.5, 0, 600000, 0, -0.5, 4100000)
    )
    e, n = np.array([600000.25, 600100.0]), np.array([4099999.75, 4099950.0])
    csv = write_csv(tmp_path / "m.csv", e=e, n=n, d=value)
    df = read_catalog(
        csv, tif, columns={"x": "e", "y": "n", "diameter": "d"}, coords="map", diameter_unit=unit
    )
    np.testing.assert_allclose(df[["x", "y"]], [[0.5, 0.5], [200.0, 100.0]])
    k = utm_scale("EPSG:32617", e, n) if unit in ("m", "km") else 1.0
    np.testing.assert_allclose(df.diameter, 20.0 * k, atol=1e-5)
    np.testing.assert_allclose(df.width, df.height, atol=1e-5)


def test_map_unit_on_geographic_crs_is_degrees(make_geotiff, tmp_path):
    tif = make_geotiff(
        "g.tif", np.zeros((10, 20), np.uint8), crs="EPSG:4326", transform=(0.1, 0, 10, 0, -0.1, 50)
    )
    csv = write_csv(tmp_path / "g.csv", x=[10.05], y=[49.45], diameter=[0.3])
    df = read_catalog(csv, tif, coords="map", diameter_unit="map")
    assert df.x[0] == pytest.approx(0.5) and df.y[0] == pytest.approx(5.5)
    assert df.diameter[0] == pytest.approx(3.0)
    # lon/lat on a geographic CRS is the identity
    assert read_catalog(csv, tif, coords="lonlat").x[0] == pytest.approx(0.5)


# --- sky: FITS with a TAN WCS ----------------------------------------------------------------

ARCSEC = 1 / 3600


@pytest.fixture
def sky_fits(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.5]
    wcs.wcs.crpix = [25.0, 20.0]
    wcs.wcs.cd = np.diag([-0.5 * ARCSEC, 0.5 * ARCSEC])  # 0.5 arcsec pixels
    path = tmp_path / "sky.fits"
    fits.PrimaryHDU(np.zeros((40, 50), np.float32), header=wcs.to_header()).writeto(path)
    return path, wcs


SKY_PIXELS = np.array([[0.5, 0.5], [24.5, 19.5], [12.3, 33.7], [49.9, 39.9]])


def sky_of(wcs, pixels):
    # project convention: first pixel centre at 0.5 -> astropy 0-based index = x - 0.5
    ra, dec = wcs.all_pix2world(pixels[:, 0] - 0.5, pixels[:, 1] - 0.5, 0)
    return ra, dec


@pytest.mark.parametrize(
    ("unit", "value"), [("arcsec", 3.0), ("arcmin", 0.05), ("deg", 3 * ARCSEC), ("px", 6.0)]
)
def test_sky_degrees_and_diameter_units(sky_fits, tmp_path, unit, value):
    path, wcs = sky_fits
    ra, dec = sky_of(wcs, SKY_PIXELS)
    csv = write_csv(tmp_path / "s.csv", RA=ra, DEC=dec, D=value)
    df = read_catalog(
        csv,
        path,
        columns={"x": "RA", "y": "DEC", "diameter": "D"},
        coords="sky",
        diameter_unit=unit,
    )
    np.testing.assert_allclose(df[["x", "y"]], SKY_PIXELS, atol=1e-6)
    np.testing.assert_allclose(df.diameter, 6.0)  # 3 arcsec at 0.5 arcsec/px


@pytest.mark.parametrize("sep", [":", " "])
def test_sky_sexagesimal_strings(sky_fits, tmp_path, sep):
    from astropy.coordinates import SkyCoord

    path, wcs = sky_fits
    ra, dec = sky_of(wcs, SKY_PIXELS)
    c = SkyCoord(ra, dec, unit="deg")
    ra_s = c.ra.to_string(unit="hourangle", sep=sep, precision=8, pad=True)
    dec_s = c.dec.to_string(unit="deg", sep=sep, precision=8, alwayssign=True, pad=True)
    assert sep in ra_s[0]
    csv = write_csv(tmp_path / "s.csv", ra=ra_s, dec=dec_s, diameter=1.0)
    df = read_catalog(
        csv, path, columns={"x": "ra", "y": "dec"}, coords="sky", diameter_unit="arcsec"
    )
    np.testing.assert_allclose(df[["x", "y"]], SKY_PIXELS, atol=1e-6)
    np.testing.assert_allclose(df.diameter, 2.0)


def test_sky_bad_string_names_row_and_column(sky_fits, tmp_path):
    path, _ = sky_fits
    csv = write_csv(tmp_path / "s.csv", ra=["10:00:00", "10:00:01"], dec=["+02:30:00", "+95:00:00"])
    with pytest.raises(CatalogError, match=r"s.csv: row 3, column 'dec'.*Dec"):
        read_catalog(csv, path, columns={"x": "ra", "y": "dec", "diameter": "ra"}, coords="sky")
    csv = write_csv(tmp_path / "t.csv", ra=["10:00:00", None], dec=["+02:30:00", "+02:30:00"], d=1)
    with pytest.raises(CatalogError, match=r"t.csv: row 3, column 'ra': empty"):
        read_catalog(csv, path, columns={"x": "ra", "y": "dec", "diameter": "d"}, coords="sky")
    csv = write_csv(tmp_path / "u.csv", ra=["10:00:00", "abc"], dec=["+02:30:00", "+02:30:00"], d=1)
    with pytest.raises(CatalogError, match=r"u.csv: row 3, column 'ra': value 'abc'"):
        read_catalog(csv, path, columns={"x": "ra", "y": "dec", "diameter": "d"}, coords="sky")


def test_sextractor_columns_one_based(sky_fits, tmp_path):
    path, wcs = sky_fits
    # SExtractor: first pixel centre is (1, 1); FITS pixel (51, 41) is past the 50 x 40 image
    X = np.array([1.0, 25.0, 50.0, 13.3, 51.0])
    Y = np.array([1.0, 20.0, 40.0, 7.8, 41.0])
    csv = write_csv(tmp_path / "se.csv", NUMBER=range(1, 6), X_IMAGE=X, Y_IMAGE=Y, A_IMAGE=2.5)
    cols = {"x": "X_IMAGE", "y": "Y_IMAGE", "diameter": "A_IMAGE"}
    with pytest.warns(UserWarning, match="dropped 1 objects"):
        df = read_catalog(csv, path, columns=cols, one_based=True, label="star")
    np.testing.assert_allclose(df.x, X[:4] - 0.5)
    np.testing.assert_allclose(df.y, Y[:4] - 0.5)
    assert df.diameter.tolist() == [2.5] * 4 and df.label.tolist() == ["star"] * 4
    # the same objects through the WCS (FITS 1-based pixels) land on the same pixels
    ra, dec = wcs.all_pix2world(X[:4], Y[:4], 1)
    sky = write_csv(tmp_path / "radec.csv", ra=ra, dec=dec, diameter=1.0)
    back = read_catalog(sky, path, columns={"x": "ra", "y": "dec"}, coords="sky")
    np.testing.assert_allclose(back[["x", "y"]], df[["x", "y"]], atol=1e-6)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cols", "kwargs", "match"),
    [
        (
            {"X_IMAGE": [1.0], "A_IMAGE": [1.0]},
            {"columns": {"x": "X_IMAGE", "y": "Y_IMAGE", "diameter": "A_IMAGE"}},
            r"e.csv: missing column\(s\) \['Y_IMAGE'\].*has \['X_IMAGE', 'A_IMAGE'\]",
        ),
        (
            {"x": [1, 2, 3], "y": [1, 2, "oops"], "diameter": [1, 1, 1]},
            {},
            r"e.csv: row 4, column 'y': value 'oops' is not a finite number",
        ),
        (
            {"x": [1, 2], "y": [1, 2], "diameter": [1.0, None]},
            {},
            r"e.csv: row 3, column 'diameter': empty value",
        ),
        (
            {"x": [1, 2], "y": [1, 2], "diameter": [1.0, "inf"]},
            {},
            r"e.csv: row 3, column 'diameter': value inf is not a finite",
        ),
        (
            {"x": [1, 2], "y": [1, 2], "size": [-1.5, 2]},
            {"columns": {"x": "x", "y": "y", "diameter": "size"}},
            r"e.csv: row 2, column 'size': diameter -1.5 is not positive",
        ),
        (
            {"l": [1, 5], "t": [1, 5], "r": [3, 4], "b": [3, 4]},
            {"columns": {"xmin": "l", "ymin": "t", "xmax": "r", "ymax": "b"}},
            r"e.csv: row 3, column 'l/t/r/b': diameter -1.0 is not positive",
        ),
        (
            {"x": [1], "y": [1], "diameter": [1]},
            {"coords": "pixels"},
            r"e.csv: unknown coords 'pixels'",
        ),
        (
            {"x": [1], "y": [1], "diameter": [1]},
            {"diameter_unit": "mm"},
            r"e.csv: unknown diameter_unit 'mm'",
        ),
    ],
    ids=["missing-mapped", "non-numeric", "nan", "inf", "negative", "box", "coords", "unit"],
)
def test_csv_errors(tif, tmp_path, cols, kwargs, match):
    csv = write_csv(tmp_path / "e.csv", **cols)
    with pytest.raises(CatalogError, match=match):
        read_catalog(csv, tif, **kwargs)


def test_unreadable_csv(tif, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81\x9f\nabc\x00\xff")
    (tmp_path / "ragged.csv").write_text('x,y,diameter\n1,2,3\n"4,5,6\n')
    for name in ("missing.csv", "empty.csv", "bin.csv"):
        with pytest.raises(CatalogError, match=rf"{name}: cannot read the CSV"):
            read_catalog(tmp_path / name, tif)
    with pytest.raises(CatalogError, match=r"ragged.csv: row 3 .* never closed"):
        read_catalog(tmp_path / "ragged.csv", tif)


def test_unreadable_raster(tmp_path):
    from tiling.errors import RasterError

    csv = write_csv(tmp_path / "a.csv", x=[1], y=[1], diameter=[1])
    (tmp_path / "junk.tif").write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(RasterError, match=r"junk.tif: cannot open as a raster"):
        read_catalog(csv, tmp_path / "junk.tif")
    with pytest.raises(RasterError, match=r"gone.tif: raster file does not exist"):
        read_catalog(csv, tmp_path / "gone.tif")


def test_crs_errors(make_geotiff, tmp_path):
    csv = write_csv(tmp_path / "a.csv", x=[10.5], y=[45.5], diameter=[1])
    no_crs = make_geotiff(
        "nocrs.tif", np.zeros((10, 10), np.uint8), crs=None, transform=(1, 0, 10, 0, -1, 50)
    )
    with pytest.raises(CatalogError, match=r"a.csv: raster .*nocrs.tif has no CRS, so positions"):
        read_catalog(csv, no_crs, coords="lonlat")
    with pytest.raises(CatalogError, match=r"a.csv: raster .*nocrs.tif has no CRS"):
        read_catalog(csv, no_crs, diameter_unit="m")
    # map coordinates and map units still work without a CRS (the geotransform is enough)
    df = read_catalog(csv, no_crs, coords="map", diameter_unit="map")
    assert (df.x[0], df.y[0], df.diameter[0]) == (0.5, 4.5, 1.0)
    geo = make_geotiff(
        "geo.tif", np.zeros((10, 10), np.uint8), crs="EPSG:4326", transform=(1, 0, 10, 0, -1, 50)
    )
    # metres on a geographic (degree) CRS: the footprint on its ellipsoid (WGS 84), 1 deg pixels
    from pyproj import Geod

    df = read_catalog(csv, geo, coords="map", diameter_unit="km")
    _, _, east = Geod(ellps="WGS84").inv(10.0, 45.5, 11.0, 45.5)
    assert df.height[0] * 111_000 == pytest.approx(1000, rel=0.01)  # 1 deg of latitude ~ 111 km
    assert df.width[0] == pytest.approx(1000 / east, rel=1e-3)  # 1 deg of longitude at 45.5


def test_outside_counts_every_side(tif, tmp_path):
    # 100 x 100 raster: edges 0 and 100 - eps are inside, 100 and negatives are not
    x = [0.0, 99.999, -0.1, 50.0, 100.0, 50.0, 50.0]
    y = [0.0, 99.999, 50.0, -3.0, 50.0, 100.0, 50.0]
    csv = write_csv(tmp_path / "o.csv", x=x, y=y, diameter=1.0, label=list("abcdefg"))
    with pytest.warns(UserWarning, match=r"o.csv: dropped 4 objects outside the raster") as rec:
        df = read_catalog(csv, tif)
    assert len(rec) == 1
    assert df.label.tolist() == ["a", "b", "g"] and df.x.tolist() == [0.0, 99.999, 50.0]


def test_all_inside_no_warning(tif, tmp_path):
    import warnings

    csv = write_csv(tmp_path / "i.csv", x=[1.0, 99.0], y=[1.0, 99.0], diameter=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_catalog(csv, tif)) == 2


# --- pair_files ------------------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path):
    im, ds = tmp_path / "im", tmp_path / "ds"
    im.mkdir(), ds.mkdir()
    for n in ("a.tif", "b.fits.fz", "extra.tif"):
        (im / n).touch()
    for n in ("a.csv", "b.csv"):
        (ds / n).touch()
    return im, ds


def test_pair_files_stems(dirs):
    im, ds = dirs
    pairs = pair_files(im, ds)
    assert [(p.name, p.raster.name, p.catalog.name) for p in pairs] == [
        ("a", "a.tif", "a.csv"),
        ("b", "b.fits.fz", "b.csv"),
    ]  # a raster without a CSV (extra.tif) is not an error


def test_pair_files_errors(dirs, tmp_path):
    im, ds = dirs
    (ds / "z.csv").touch()
    (ds / "y.csv").touch()
    with pytest.raises(CatalogError, match=r"without a raster.*y.csv.*z.csv.*image_filenames"):
        pair_files(im, ds)
    with pytest.raises(CatalogError, match=r"same length"):
        pair_files(im, ds, ["a.tif", "extra.tif"], ["a.csv"])
    with pytest.raises(CatalogError, match=r"same length"):
        pair_files(im, ds, ["a.tif"], None)
    with pytest.raises(CatalogError, match=r"missing files.*nope.csv"):
        pair_files(im, ds, ["a.tif"], ["nope.csv"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CatalogError, match=r"no CSV in .*empty"):
        pair_files(im, empty)
    with pytest.raises(CatalogError, match=r"folders not found: .*nowhere"):
        pair_files(tmp_path / "nowhere", ds)


# --- the real NEON raster: boxes vs centre + diameter ----------------------------------------


def test_neon_boxes_equal_catalog_from_boxes(neon_csv, neon_tif, tmp_path):
    import torch

    from tiling.geometry.grid import catalog_from_boxes

    raw = pd.read_csv(neon_csv)
    boxes = torch.tensor(raw[["xmin", "ymin", "xmax", "ymax"]].to_numpy(), dtype=torch.float64)
    xy, d = catalog_from_boxes(boxes)
    csv = write_csv(
        tmp_path / "c.csv", x=xy[:, 0].numpy(), y=xy[:, 1].numpy(), diameter=d.numpy(), label="Tree"
    )
    from_boxes = read_catalog(neon_csv, neon_tif)
    from_centres = read_catalog(csv, neon_tif)
    same = ["x", "y", "diameter", "label"]
    pd.testing.assert_frame_equal(from_boxes[same], from_centres[same])
    # boxes keep their own width and height; centres and a diameter make squares
    np.testing.assert_allclose(from_boxes.width, raw.xmax - raw.xmin)
    np.testing.assert_allclose(from_boxes.height, raw.ymax - raw.ymin)
    np.testing.assert_allclose(from_centres.width, from_centres.height)
    assert from_boxes.label.unique().tolist() == ["Tree"]
    np.testing.assert_allclose(from_boxes.y, (raw.ymin + raw.ymax) / 2)
    assert from_boxes.diameter.min() > 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coords": "sky"}, r"coords='sky' needs a raster with a celestial WCS"),
        ({"coords": "map", "diameter_unit": "arcsec"}, r"diameter_unit='arcsec' is an angle"),
        ({"coords": "map", "one_based": True}, r"one_based=True applies to coords='pixel' only"),
    ],
)
def test_sky_options_on_a_map_raster_are_refused(tif, tmp_path, kwargs, match):
    csv = write_csv(tmp_path / "a.csv", x=[500010.0], y=[3999990.0], diameter=[4.0])
    with pytest.raises(CatalogError, match=match):
        read_catalog(csv, tif, **kwargs)


def test_map_coords_on_a_sky_raster_are_refused(sky_fits, tmp_path):
    path, _wcs = sky_fits
    csv = write_csv(tmp_path / "s.csv", x=[150.0], y=[2.5], diameter=[3.0])
    with pytest.raises(CatalogError, match=r"has a sky WCS; use coords='sky'"):
        read_catalog(csv, path, coords="lonlat")
