"""``raster-detect predict``: option ranges, output safety, GIS formats, checkpoints, batch of one."""

import errno
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch

from model.config import ModelConfig
from model.network.checkpoint import save_model_checkpoint, write_score_thresholds
from model.network.factory import build_retinanet
from tests.cli_runner import assert_one_line_error, run_cli
from tests.conftest import write_geotiff
from tests.model.fakes import square_image
from tests.model.network.test_torch_file import CASES, make

ANCH = ((8,), (16,), (24,), (32,), (48,))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = ModelConfig(
        in_channels=1, tile_size=64, anchor_sizes=ANCH, score_thresh=0.0, fpn_channels=32
    )
    path = tmp_path_factory.mktemp("ckpt") / "m.ckpt"
    return save_model_checkpoint(build_retinanet(cfg).eval(), cfg, path)


@pytest.fixture
def raster(tmp_path):
    return write_geotiff(tmp_path / "r.tif", square_image(100, [(10, 10, 8)]))


def predict(capsys, ckpt, raster, out, *extra):
    return run_cli(
        capsys,
        "predict",
        "--checkpoint",
        ckpt,
        "--raster",
        raster,
        "--out",
        out,
        "--workers",
        0,
        *extra,
    )


def test_writes_csv_and_gis_files(tmp_path, capsys, ckpt, raster):
    out = tmp_path / "o.csv"
    assert (
        predict(capsys, ckpt, raster, out, "--gpkg", tmp_path / "o.gpkg", "--overlap", 16)[0] == 0
    )
    frame = pd.read_csv(out)
    assert {"x", "y", "diameter", "score", "label", "map_x", "lon"} <= set(frame.columns)
    assert len(gpd.read_file(tmp_path / "o.gpkg", layer="centres")) == len(frame)
    for suffix in (".fgb",):  # every format: tests/model/inference/test_writers.py
        gis = tmp_path / f"o{suffix}"
        code, err = predict(capsys, ckpt, raster, out, "--gis", gis, "--overwrite")
        assert code == 0, err
        read = gpd.read_parquet if suffix == ".parquet" else gpd.read_file
        assert len(read(gis)) == len(frame) and read(gis).crs.to_epsg() == 32617


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        (
            "--batch-size",
            "0",
            "argument --batch-size: '0' is not a positive whole number; give 1 or more",
        ),
        ("--workers", "-1", "argument --workers: '-1' is negative; give 0 or more"),
        ("--score-thresh", "1.5", "argument --score-thresh: '1.5' is not a number between 0 and 1"),
        ("--score-thresh", "nan", "argument --score-thresh: 'nan' is not a number between 0 and 1"),
        (
            "--score-thresh",
            "-0.1",
            "argument --score-thresh: '-0.1' is not a number between 0 and 1",
        ),
        ("--nms-thresh", "2", "argument --nms-thresh: '2' is not a number between 0 and 1"),
        ("--tile-size", "0", "argument --tile-size: '0' is not a positive whole number"),
        ("--overlap", "-5", "argument --overlap: '-5' is negative"),
        (
            "--device",
            "gpu7",
            "argument --device: unknown device 'gpu7'; use cpu, cuda, cuda:<index> or mps",
        ),
        (
            "--device",
            "cuda",
            "argument --device: 'cuda': no CUDA GPU is available on this machine; use cpu",
        ),
        ("--device", "cuda:3", "argument --device: 'cuda:3': no CUDA GPU is available"),
    ],
)
def test_option_out_of_range_is_one_line_and_writes_nothing(
    tmp_path, capsys, monkeypatch, ckpt, raster, option, value, fragment
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "o.csv"
    assert_one_line_error(*predict(capsys, ckpt, raster, out, option, value), fragment)
    assert not out.exists()


@pytest.mark.parametrize("tile_size", ["64", None])
def test_overlap_must_be_below_the_tile_size(tmp_path, capsys, ckpt, raster, tile_size):
    extra = ["--tile-size", tile_size] if tile_size else []  # else the checkpoint's 64
    code, err = predict(capsys, ckpt, raster, tmp_path / "o.csv", "--overlap", "64", *extra)
    fragment = (
        "--overlap 64 must be smaller than --tile-size 64"
        if tile_size
        else "overlap=64 must be >= 0 and smaller than tile_size=64"
    )
    assert_one_line_error(code, err, fragment)


def test_output_is_never_an_input(tmp_path, capsys, ckpt, raster):
    before = raster.read_bytes(), ckpt.read_bytes()
    for out in (raster, ckpt, tmp_path / "." / "r.tif"):
        code, err = predict(capsys, ckpt, raster, out, "--overwrite")
        assert_one_line_error(code, err, f"--out {out} is the input", "choose another --out")
    code, err = predict(capsys, ckpt, raster, tmp_path / "o.gpkg", "--gis", tmp_path / "o.gpkg")
    assert_one_line_error(code, err, f"--gis {tmp_path / 'o.gpkg'} is the --out file too")
    assert (raster.read_bytes(), ckpt.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif"]


def test_output_folder_device_and_link_are_refused(tmp_path, capsys, ckpt, raster):
    target = tmp_path / "target.csv"
    target.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    cases = [
        (tmp_path, "is a folder; give a file name"),
        (Path("/dev/null"), "/dev/null is a character device, not a regular file"),
        (link, "is a symbolic link"),
    ]
    for out, fragment in cases:
        assert_one_line_error(
            *predict(capsys, ckpt, raster, out, "--overwrite"), f"--out {out}", fragment
        )
    assert link.is_symlink() and target.read_text() == "keep"


def test_existing_output_needs_overwrite(tmp_path, capsys, ckpt, raster):
    out = tmp_path / "o.csv"
    out.write_text("earlier")
    code, err = predict(capsys, ckpt, raster, out)
    assert_one_line_error(code, err, f"--out {out} already exists; pass --overwrite to replace it")
    assert out.read_text() == "earlier"
    assert predict(capsys, ckpt, raster, out, "--overwrite")[0] == 0
    assert list(pd.read_csv(out).columns[:7]) == [
        "x",
        "y",
        "diameter",
        "width",
        "height",
        "score",
        "label",
    ]


@pytest.mark.parametrize("name", ["o.shp", "o", "o.kml"])
def test_unknown_gis_suffix_is_refused_with_the_list(tmp_path, capsys, ckpt, raster, name):
    code, err = predict(capsys, ckpt, raster, tmp_path / "o.csv", "--gpkg", tmp_path / name)
    assert_one_line_error(
        code,
        err,
        "--gis",
        "unknown GIS format",
        ".gpkg (GeoPackage), .geojson (GeoJSON), .json (GeoJSON), .fgb (FlatGeobuf), .parquet (GeoParquet)",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif"]


@pytest.mark.parametrize(
    ("georeference", "reason"),
    [
        ({"crs": None}, "it has a geotransform but no CRS"),
        ({"transform": (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)}, "no geotransform"),
    ],
)
def test_gis_for_a_raster_without_map_is_refused_before_predicting(
    tmp_path, capsys, georeference, reason
):
    raster = write_geotiff(tmp_path / "plain.tif", square_image(100, []), **georeference)
    missing = tmp_path / "no.ckpt"  # never opened: the refusal comes first
    code, err = predict(capsys, missing, raster, tmp_path / "o.csv", "--gis", tmp_path / "o.gpkg")
    assert_one_line_error(
        code, err, str(raster), "--gis (a GIS file) needs map coordinates", reason, "CSV"
    )
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("kind", sorted(CASES))
def test_checkpoint_that_is_no_checkpoint(tmp_path, capsys, raster, kind):
    bad = make(tmp_path, kind)
    code, err = predict(capsys, bad, raster, tmp_path / "o.csv")
    fragment = CASES[kind].split(" \\(")[0].replace("\\", "")
    assert_one_line_error(
        code,
        err,
        f"Checkpoint file {bad} ",
        fragment,
        "A checkpoint is one file written by torch.save",
    )
    assert "weights_only" not in err and not (tmp_path / "o.csv").exists()


def test_a_batch_of_one_window_predicts(tmp_path, capsys):
    cfg = ModelConfig(
        in_channels=1, tile_size=128, anchor_sizes=ANCH, score_thresh=0.0, fpn_channels=32
    )
    ckpt = save_model_checkpoint(build_retinanet(cfg).eval(), cfg, tmp_path / "m.ckpt")
    raster = write_geotiff(tmp_path / "r.tif", square_image(128, [(40, 40, 12)]))  # one window
    out = tmp_path / "o.csv"
    code, err = predict(capsys, ckpt, raster, out, "--batch-size", "1", "--tile-size", "128")
    assert code == 0, err
    frame = pd.read_csv(out)
    assert len(frame) > 0 and np.isfinite(frame[["x", "y", "diameter"]].to_numpy()).all()


def test_disk_full_names_the_catalogue_and_leaves_nothing(
    tmp_path, capsys, monkeypatch, ckpt, raster
):
    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "o.csv"
    code, err = predict(capsys, ckpt, raster, out)
    assert_one_line_error(code, err, f"disk full while writing {out}: it needs", "bytes free in")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.tif"]


def test_stored_threshold_by_default_and_the_option_overrides(tmp_path, capsys, ckpt, raster):
    every = tmp_path / "every.csv"
    no_tta = ("--tta", "none")  # the views' fused scores are others; one rule at a time
    assert predict(capsys, ckpt, raster, every, "--score-thresh", 0, *no_tta)[0] == 0
    scores = pd.read_csv(every)["score"]
    stored = float(scores.quantile(0.9))
    assert len(scores) >= 10 and scores.max() < 0.5
    ckpt_copy = tmp_path / "stored.ckpt"
    ckpt_copy.write_bytes(Path(ckpt).read_bytes())
    write_score_thresholds(ckpt_copy, {"score_thresh_f1": stored, "score_thresh_p70": None})
    default = tmp_path / "default.csv"
    assert predict(capsys, ckpt_copy, raster, default, *no_tta)[0] == 0
    kept = pd.read_csv(default)["score"]
    assert 0 < len(kept) < len(scores) and (kept >= stored).all()
    given = tmp_path / "given.csv"
    assert predict(capsys, ckpt_copy, raster, given, "--score-thresh", 0.5, *no_tta)[0] == 0
    assert len(pd.read_csv(given)) == 0


def test_tta_takes_the_threshold_stored_for_its_views(tmp_path, capsys, ckpt, raster):
    every = tmp_path / "every.csv"
    assert predict(capsys, ckpt, raster, every, "--score-thresh", 0)[0] == 0  # flips
    n_every = len(pd.read_csv(every))
    assert n_every >= 10
    for one_pass, views in ((0.99, 0.0), (0.0, 0.99)):
        ckpt_copy = tmp_path / f"stored{views}.ckpt"
        ckpt_copy.write_bytes(Path(ckpt).read_bytes())
        stored = {"score_thresh_f1": one_pass, "score_thresh_f1@flips": views}
        write_score_thresholds(ckpt_copy, stored)
        default, plain = tmp_path / f"flips{views}.csv", tmp_path / f"none{views}.csv"
        assert predict(capsys, ckpt_copy, raster, default)[0] == 0  # --tta flips by default
        assert predict(capsys, ckpt_copy, raster, plain, "--tta", "none")[0] == 0
        n_flips, n_plain = len(pd.read_csv(default)), len(pd.read_csv(plain))
        assert n_flips == (n_every if views == 0.0 else 0)
        assert (n_plain > 0) == (one_pass == 0.0)


def test_tta_option(tmp_path, capsys, ckpt, raster):
    out = tmp_path / "d4.csv"
    assert predict(capsys, ckpt, raster, out, "--tta", "d4", "--score-thresh", 0)[0] == 0
    assert {"x", "y", "score"} <= set(pd.read_csv(out).columns)
    code, err = predict(capsys, ckpt, raster, out, "--tta", "d8", "--overwrite")
    assert code == 2 and "argument --tta: 'd8' is not one of none | flips | d4" in err
