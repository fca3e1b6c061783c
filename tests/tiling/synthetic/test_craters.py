"""Tests of the synthetic crater field: determinism, seamless strips, content vs catalogue, CLI."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from tiling.errors import ConfigError
from tiling.sources import Window, open_raster
from tiling.synthetic import craters as synthetic


def read_all(path):
    with open_raster(path) as src:
        return src.read(Window(0, 0, src.height, src.width))[0]


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """The ``--small`` data set, written once through the CLI."""
    out = tmp_path_factory.mktemp("synth")
    synthetic.main(["--out", str(out), "--small", "--seed", "0"])
    return out


@pytest.fixture(scope="module")
def field_a(small_set):
    image = read_all(small_set / "images" / "crater_field_a.tif").astype(np.float64)
    catalogue = pd.read_csv(small_set / "datasets" / "crater_field_a.csv")
    return image, catalogue


def test_dataset_files_and_geotiff_profile(small_set):
    import rasterio

    for name, side in (("crater_field_a", 1024), ("crater_field_b", 768)):
        raster = small_set / "images" / f"{name}.tif"
        assert (small_set / "datasets" / f"{name}.csv").is_file()
        with open_raster(raster) as src:
            assert (src.height, src.width, src.count) == (side, side, 1)
            assert src.dtype == np.uint16 and src.nodata == 0 and src.world == "map"
            assert "32633" in src.crs_wkt and src.pixel_size() == pytest.approx(1.0)
        with rasterio.open(raster) as ds:
            assert ds.block_shapes[0] == (512, 512)
            assert ds.compression.name.lower() == "deflate"
            assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
    assert not list(small_set.rglob(".*"))  # no temporary file left (tiling.atomic)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    def make(tag, seed):
        tif, csv = tmp_path / f"{tag}.tif", tmp_path / f"{tag}.csv"
        synthetic.generate_crater_field(tif, csv, height=200, width=300, seed=seed)
        return tif.read_bytes(), csv.read_bytes()

    first, again, other = make("a", 3), make("b", 3), make("c", 4)
    assert first == again
    assert first[0] != other[0] and first[1] != other[1]


def test_pixels_do_not_depend_on_strip_size(tmp_path):
    kwargs = {"height": 300, "width": 260, "seed": 5}
    synthetic.generate_crater_field(tmp_path / "a.tif", tmp_path / "a.csv", **kwargs)
    synthetic.generate_crater_field(tmp_path / "b.tif", tmp_path / "b.csv", strip_rows=37, **kwargs)
    np.testing.assert_array_equal(read_all(tmp_path / "a.tif"), read_all(tmp_path / "b.tif"))


def test_value_noise_is_seamless_across_windows():
    ys, xs = np.arange(40) + 0.5, np.arange(70) + 0.5
    whole = synthetic.value_noise(7, ys, xs, 16)
    part = synthetic.value_noise(7, ys[13:], xs[29:], 16)
    np.testing.assert_array_equal(whole[13:, 29:], part)
    assert whole.min() >= -1 and whole.max() <= 1 and whole.std() > 0.1


def clear_discs(catalogue, image, min_diameter):
    """Catalogue craters (x, y, radius) of at least min_diameter whose disc is on valid pixels."""
    rows = catalogue[catalogue["diameter"] >= min_diameter]
    out = []
    for x, y, d in rows[["x", "y", "diameter"]].itertuples(index=False):
        r = d / 2
        inside = r <= x <= image.shape[1] - r and r <= y <= image.shape[0] - r
        if inside and (image[int(y - r) : int(y + r) + 1, int(x - r) : int(x + r) + 1] > 0).all():
            out.append((x, y, r))
    return out


def disc_mean(values, x, y, r):
    yy, xx = np.ogrid[: values.shape[0], : values.shape[1]]
    return values[(xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= r * r].mean()


def test_crater_discs_are_rougher_than_crater_free_discs(field_a):
    image, catalogue = field_a
    gy, gx = np.gradient(image)
    slope = np.hypot(gx, gy)
    craters = clear_discs(catalogue, image, 8)
    rng = np.random.default_rng(0)
    cat = catalogue[["x", "y", "diameter"]].to_numpy()
    controls = []
    for *_, r in craters:
        for _ in range(50):
            cx, cy = rng.uniform(r, 900 - r), rng.uniform(r, 1024 - r)
            gap = np.hypot(cat[:, 0] - cx, cat[:, 1] - cy) - synthetic.EXTENT * cat[:, 2] / 2
            if (gap > r).all():
                controls.append(disc_mean(slope, cx, cy, r))
                break
    inside = [disc_mean(slope, x, y, r) for x, y, r in craters]
    assert len(inside) > 30 and len(controls) > 20
    assert np.mean(inside) > 2 * np.mean(controls)


def test_inner_wall_away_from_sun_is_brighter(field_a):
    image, catalogue = field_a
    azimuth = math.radians(synthetic.FIELDS[0][3])
    sun = np.array([math.sin(azimuth), -math.cos(azimuth)])  # towards the sun, image x/y
    fresh = catalogue[catalogue["label"] == "fresh"]
    wins = []
    for x, y, r in clear_discs(fresh, image, 10):
        lit = np.array([x, y]) - 0.5 * r * sun
        dark = np.array([x, y]) + 0.5 * r * sun
        wins.append(image[int(lit[1]), int(lit[0])] > image[int(dark[1]), int(dark[0])])
    assert len(wins) > 15 and np.mean(wins) > 0.9


def test_fresh_craters_have_more_contrast_than_degraded(field_a):
    image, catalogue = field_a

    def contrast(label):
        subset = catalogue[(catalogue["label"] == label) & (catalogue["diameter"] < 30)]
        return np.median(
            [
                image[int(y - r) : int(y + r), int(x - r) : int(x + r)].std()
                for x, y, r in clear_discs(subset, image, 8)
            ]
        )

    assert contrast("fresh") > 1.3 * contrast("degraded")


def test_nodata_band_on_the_right_and_catalogue_clear_of_it(field_a):
    image, catalogue = field_a
    nodata = image == 0
    assert nodata[:, -1].all() and not nodata[:, : int(0.9 * 1024)].any()
    assert 0.02 < nodata.mean() < 0.09
    first = nodata.argmax(axis=1)  # first nodata column per row
    assert (nodata.sum(axis=1) == 1024 - first).all()  # one run up to the right edge
    assert first.max() - first.min() > 5  # irregular edge
    for x, y, d in catalogue[["x", "y", "diameter"]].itertuples(index=False):
        lo, hi = max(int(y - d / 2), 0), min(math.ceil(y + d / 2) + 1, 1024)
        assert x + d / 2 < first[lo:hi].min()
    valid = image[~nodata]
    assert valid.min() >= 1 and 15_000 < np.median(valid) < 45_000 and valid.max() < 60_000


def test_catalogue_columns_labels_and_size_distribution(small_set):
    for name, side in (("crater_field_a", 1024), ("crater_field_b", 768)):
        catalogue = pd.read_csv(small_set / "datasets" / f"{name}.csv")
        assert list(catalogue.columns) == ["x", "y", "diameter", "label"]
        assert set(catalogue["label"]) == {"fresh", "degraded"}
        d = catalogue["diameter"]
        assert d.min() >= 5 and d.max() <= 150
        assert (d < 10).sum() > 3 * (d >= 20).sum() > 0
        slope = len(d) / np.log(d / 5).sum()  # Pareto maximum likelihood, true value 2
        assert 1.5 < slope < 2.7
        per_tile = len(catalogue) / (side * side / 256**2)
        assert 5 < per_tile < 40
        assert ((catalogue[["x", "y"]] >= 0) & (catalogue[["x", "y"]] <= side)).all().all()
        assert (catalogue[["x", "y", "diameter"]] * 1000).round(6).mod(1).eq(0).all().all()


def test_if_missing_does_nothing_when_a_raster_exists(tmp_path, caplog):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "mine.tif").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="tiling.synthetic"):
        synthetic.main(["--out", str(tmp_path), "--if-missing", "--small"])
    assert "nothing generated" in caplog.text
    assert not (tmp_path / "datasets").exists()
    assert synthetic.existing_rasters(tmp_path / "nowhere") == []


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main(["--help"])
    assert exit_info.value.code == 0
    assert "--if-missing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fresh_fraction": 1.5}, "fresh_fraction=1.5 is out of range"),
        ({"diameter_range": (20.0, 10.0)}, r"diameter_range=\(20.0, 10.0\) is out of range"),
        ({"density": 0.0}, "density=0.0 is out of range"),
        ({"craters": 5}, r"unknown parameter\(s\) \['craters'\]"),
        ({"strip_rows": 0}, "strip_rows=0 must be >= 1"),
        ({"height": 8}, "size 8 x 64 px is too small"),
    ],
)
def test_bad_parameters_raise_config_error(tmp_path, kwargs, match):
    args = {"height": 64, "width": 64, **kwargs}
    with pytest.raises(ConfigError, match=match):
        synthetic.generate_crater_field(tmp_path / "x.tif", tmp_path / "x.csv", **args)
    assert not list(tmp_path.iterdir())
