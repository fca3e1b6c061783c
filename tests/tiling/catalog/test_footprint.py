"""Footprints on the body's ellipsoid against independent formulas; longitude conventions."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_geotiff
from tiling.catalog import read_catalog
from tiling.catalog.footprint import LonLatFrame, circle_extremes, wrap_longitude
from tiling.sources import open_raster

MOON_R, MARS_R = 1_737_400.0, 3_396_190.0
LATITUDES = np.array([0.0, 45.0, 70.0])


def write_csv(path, **columns):
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def sphere_extent_deg(lat, diameter_m, radius):
    """Longitude and latitude spans (deg) of a spherical cap of ``diameter_m`` centred at ``lat``.

    The cap's angular radius is ``rho = D / (2 R)``; its extreme longitudes satisfy
    ``sin(dlon) = sin(rho) / cos(lat)`` and its extreme latitudes are ``lat +- rho``.
    """
    rho = diameter_m / (2 * radius)
    dlon = np.arcsin(np.sin(rho) / np.cos(np.radians(lat)))
    return np.degrees(2 * dlon), np.degrees(2 * rho)


@pytest.mark.parametrize(
    ("crs", "radius", "lon0"),
    [("IAU_2015:30100", MOON_R, -12.0), ("IAU_2015:49900", MARS_R, 300.0)],
    ids=["moon", "mars"],
)
def test_simple_cylindrical_boxes_against_the_sphere(tmp_path, crs, radius, lon0):
    """A lon/lat/km crater catalogue on a simple-cylindrical mosaic (degrees), craters at 0, 45
    and 70 degrees of latitude: box width and height within 0.1 px of the spherical formula."""
    deg = 0.02  # ~600 m (Moon) and ~1200 m (Mars) pixels
    tif = write_geotiff(
        tmp_path / "body.tif",
        np.zeros((3800, 1100), np.uint8),
        crs=crs,
        transform=(deg, 0, lon0, 0, -deg, 75.0),
    )
    lon = np.array([lon0 + 5, lon0 + 10, lon0 + 20]) % 360  # 0-360 against -12..12: see below
    diameter_km = np.array([8.0, 15.0, 24.0])
    csv = write_csv(tmp_path / "c.csv", lon=lon, lat=LATITUDES, diameter_km=diameter_km)
    df = read_catalog(
        csv, tif, columns={"x": "lon", "y": "lat", "diameter": "diameter_km"},
        coords="lonlat", diameter_unit="km",
    )  # fmt: skip
    dlon, dlat = sphere_extent_deg(LATITUDES, diameter_km * 1000, radius)
    np.testing.assert_allclose(df.width, dlon / deg, atol=0.1)
    np.testing.assert_allclose(df.height, dlat / deg, atol=0.1)
    assert df.width[2] / df.height[2] == pytest.approx(1 / np.cos(np.radians(70)), rel=1e-3)
    np.testing.assert_allclose(df.x, (np.array([5, 10, 20])) / deg, atol=1e-6)
    np.testing.assert_allclose(df.y, (75 - LATITUDES) / deg, atol=1e-6)
    np.testing.assert_allclose(df.diameter, (df.width + df.height) / 2)


def test_ellipsoid_boxes_against_radii_of_curvature(tmp_path):
    """Mars as an ellipsoid (IAU 2015 ographic): small craters span D / M(lat) of latitude and
    D / (N(lat) cos lat) of longitude, M and N the meridional and prime-vertical radii."""
    deg = 0.02
    tif = write_geotiff(
        tmp_path / "mars.tif", np.zeros((3800, 1100), np.uint8), crs="IAU_2015:49901",
        transform=(deg, 0, 0.0, 0, -deg, 75.0),
    )  # fmt: skip
    a, inv_f = MARS_R, 169.8944472236118
    e2 = (2 - 1 / inv_f) / inv_f
    s2 = np.sin(np.radians(LATITUDES)) ** 2
    meridional = a * (1 - e2) / (1 - e2 * s2) ** 1.5
    normal = a / np.sqrt(1 - e2 * s2)
    d = np.array([60e3, 60e3, 60e3])  # 50 px: second-order terms ~0.005 px
    csv = write_csv(tmp_path / "c.csv", x=[5.0, 10, 20], y=LATITUDES, diameter=d)
    df = read_catalog(csv, tif, coords="lonlat", diameter_unit="m")
    np.testing.assert_allclose(df.height, np.degrees(d / meridional) / deg, atol=0.1)
    width = np.degrees(d / (normal * np.cos(np.radians(LATITUDES)))) / deg
    np.testing.assert_allclose(df.width, width, atol=0.1)
    # the sphere of the equatorial radius would be wrong by 0.4 % (0.19 px) at 70 degrees
    assert abs(df.height[2] - np.degrees(d[2] / a) / deg) > 0.15


def stereographic_radius(colatitude, radius):
    """Distance from the pole of a point at ``colatitude`` (rad) in polar stereographic (k0=1)."""
    return 2 * radius * np.tan(colatitude / 2)


def test_polar_stereographic_circles_stay_circles(tmp_path):
    """Stereographic maps circles to circles: the cap at colatitude t of angular radius r spans
    from 2R tan((t - r)/2) to 2R tan((t + r)/2) from the pole, as wide as it is long."""
    px = 100.0
    tif = write_geotiff(
        tmp_path / "south.tif", np.zeros((3000, 3000), np.uint8),
        crs=f"+proj=stere +lat_0=-90 +lat_ts=-90 +R={MARS_R} +units=m +no_defs",
        transform=(px, 0, -150_000, 0, -px, 150_000),
    )  # fmt: skip
    lat, lon, d = np.array([-89.0, -88.0, -87.6]), np.array([30.0, 200.0, -45.0]), 20_000.0
    csv = write_csv(tmp_path / "c.csv", x=lon, y=lat, diameter=[d / 1000] * 3)
    df = read_catalog(csv, tif, coords="lonlat", diameter_unit="km")
    colat, rho = np.radians(90 + lat), d / (2 * MARS_R)
    side = stereographic_radius(colat + rho, MARS_R) - stereographic_radius(colat - rho, MARS_R)
    np.testing.assert_allclose(df.width, side / px, atol=0.1)
    np.testing.assert_allclose(df.height, side / px, atol=0.1)


def test_cylindrical_equal_area_boxes(tmp_path):
    """Lambert cylindrical equal-area on a sphere: x = R lon, y = R sin(lat)."""
    px = 500.0
    tif = write_geotiff(
        tmp_path / "cea.tif", np.zeros((3600, 2000), np.uint8),
        crs=f"+proj=cea +lat_ts=0 +R={MOON_R} +units=m +no_defs",
        transform=(px, 0, 0.0, 0, -px, MOON_R),
    )  # fmt: skip
    d = np.array([30_000.0, 30_000.0, 30_000.0])
    csv = write_csv(tmp_path / "c.csv", x=[5.0, 10.0, 20.0], y=LATITUDES, diameter=d)
    df = read_catalog(csv, tif, coords="lonlat", diameter_unit="m")
    dlon, _ = sphere_extent_deg(LATITUDES, d, MOON_R)
    rho = d / (2 * MOON_R)
    phi = np.radians(LATITUDES)
    np.testing.assert_allclose(df.width, MOON_R * np.radians(dlon) / px, atol=0.1)
    height = MOON_R * (np.sin(phi + rho) - np.sin(phi - rho)) / px
    np.testing.assert_allclose(df.height, height, atol=0.1)
    assert df.height[2] < df.width[2] / 5  # equal area: squeezed north-south at 70 degrees


@pytest.mark.parametrize(
    ("west", "lons", "expected_x"),
    [
        (-10.0, [355.0, 5.0, -5.0], [5.0, 15.0, 5.0]),  # raster in -180..180, catalogue 0..360
        (170.0, [-175.0, 185.0, 175.0], [15.0, 15.0, 5.0]),  # raster 170..190 over the antimeridian
        (300.0, [-55.0, 305.0], [5.0, 5.0]),  # raster in 0..360, catalogue -180..180
        (-190.0, [175.0, -185.0], [5.0, 5.0]),  # raster -190..-170 over the antimeridian
    ],
)
def test_longitude_conventions(tmp_path, west, lons, expected_x):
    tif = write_geotiff(
        tmp_path / "m.tif", np.zeros((40, 20), np.uint8), crs="IAU_2015:30100",
        transform=(1.0, 0, west, 0, -1.0, 20.0),
    )  # fmt: skip
    csv = write_csv(tmp_path / "c.csv", x=lons, y=[10.0] * len(lons), diameter=[30.0] * len(lons))
    df = read_catalog(csv, tif, coords="lonlat", diameter_unit="km")
    np.testing.assert_allclose(df.x, expected_x, atol=1e-9)
    np.testing.assert_allclose(df.y, 10.0, atol=1e-9)
    assert df.width.min() > 0.9 and df.width.max() < 1.1  # 30 km ~ 1 deg at 10 deg N


def test_projected_raster_across_the_antimeridian(tmp_path):
    """UTM zone 60 (central meridian 177 E) reaches past 180: -179.5 lands east of 179.5."""
    from pyproj import Transformer

    to_map = Transformer.from_crs("EPSG:4326", "EPSG:32660", always_xy=True)
    e0, n0 = to_map.transform(178.0, -17.0)
    tif = write_geotiff(
        tmp_path / "utm.tif", np.zeros((500, 500), np.uint8), crs="EPSG:32660",
        transform=(1000.0, 0, e0, 0, -1000.0, n0),
    )  # fmt: skip
    csv = write_csv(tmp_path / "c.csv", x=[179.5, -179.5, 180.5], y=[-17.5] * 3, diameter=[5.0] * 3)
    df = read_catalog(csv, tif, coords="lonlat", diameter_unit="km")
    assert df.x[1] > df.x[0] + 100 and df.x[2] == pytest.approx(df.x[1], abs=1e-6)
    np.testing.assert_allclose(df.width, 5.0, rtol=2e-3)  # 1 km pixels, scale factor ~1.0003


def test_frame_round_trip_within_tolerances(tmp_path):
    """Catalogue -> pixel boxes -> lon/lat and diameter back: 0.1 px and 0.5 % of the diameter."""
    deg = 0.04
    tif = write_geotiff(
        tmp_path / "moon.tif", np.zeros((2000, 750), np.uint8), crs="IAU_2015:30100",
        transform=(deg, 0, 340.0, 0, -deg, 75.0),
    )  # fmt: skip
    rng = np.random.default_rng(0)
    lon, lat = rng.uniform(-19.5, 9.5, 200), rng.uniform(-4.0, 74.0, 200)  # -180..180 given
    d_m = rng.uniform(2_000.0, 40_000.0, 200)
    with open_raster(tif) as raster:
        frame = LonLatFrame.of(raster)
        x, y, w, h = frame.footprints(lon, lat, d_m)
        lon_back, lat_back = frame.to_lonlat(x, y)
        d_back = frame.diameters(x, y, w, h)
        x_back, y_back = frame.to_pixels(lon_back, lat_back)
    assert lon_back.min() >= 340.0 - 180 and lon_back.max() < 340.0 + 180
    np.testing.assert_allclose(np.mod(lon_back, 360), np.mod(lon, 360), atol=1e-9)
    np.testing.assert_allclose(lat_back, lat, atol=1e-9)
    assert np.abs(np.hypot(x_back - x, y_back - y)).max() < 0.1
    assert np.abs(d_back / d_m - 1).max() < 0.005
    assert np.abs(d_back / d_m - 1).max() < 1e-5  # in fact much closer


def test_circle_extremes_and_wrap():
    angle = np.arange(16) * 2 * np.pi / 16 + 0.1
    ring = 3.0 * np.cos(angle)[None] + 1.0
    assert circle_extremes(ring)[0] == pytest.approx(4.0, abs=3e-3)
    assert ring.max() < 4.0 - 0.01  # the samples alone fall short
    assert wrap_longitude(np.array([350.0, -10.0, 190.0]), 0.0).tolist() == [-10.0, -10.0, -170.0]
    assert wrap_longitude(np.array([-175.0]), 180.0).tolist() == [185.0]


def test_map_units_follow_non_square_pixels(tmp_path):
    tif = write_geotiff(
        tmp_path / "r.tif", np.zeros((100, 100), np.uint8), transform=(2.0, 0, 500000, 0, -0.5, 4e6)
    )
    csv = write_csv(tmp_path / "c.csv", x=[500050.0], y=[3999975.0], diameter=[10.0])
    df = read_catalog(csv, tif, coords="map", diameter_unit="map")
    assert (df.width[0], df.height[0]) == pytest.approx((5.0, 20.0), abs=1e-3)
    assert df.diameter[0] == pytest.approx(12.5, abs=1e-3)


def test_boxes_in_map_coordinates(tmp_path):
    tif = write_geotiff(
        tmp_path / "r.tif", np.zeros((100, 100), np.uint8), transform=(0.5, 0, 500000, 0, -0.5, 4e6)
    )
    csv = write_csv(tmp_path / "c.csv", xmin=[500001.0], ymin=[3999990.0], xmax=[500011.0],
                    ymax=[3999994.0])  # fmt: skip
    df = read_catalog(csv, tif, coords="map")
    assert (df.x[0], df.y[0], df.width[0], df.height[0]) == pytest.approx((12.0, 16.0, 20.0, 8.0))
