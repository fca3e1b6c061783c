"""Many rasters: expansion of files/folders/globs, one catalogue each and all.csv, Ray tasks."""

import pandas as pd
import pytest

from model.config import ModelConfig
from model.inference.many import expand_rasters, predict_rasters
from model.network.checkpoint import save_model_checkpoint
from model.network.factory import build_retinanet
from model.ray_options import RayOptions
from tests.cli_runner import assert_one_line_error, run_cli
from tests.conftest import write_geotiff
from tests.model.fakes import square_image
from tiling.errors import ConfigError, OutputError

ANCH = ((8,), (16,), (24,), (32,), (48,))
OPTIONS = {"workers": 0, "tta": None, "progress": False}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    cfg = ModelConfig(
        in_channels=1, tile_size=64, anchor_sizes=ANCH, score_thresh=0.0, fpn_channels=32
    )
    path = tmp_path_factory.mktemp("ckpt") / "m.ckpt"
    return save_model_checkpoint(build_retinanet(cfg).eval(), cfg, path)


@pytest.fixture
def rasters(tmp_path):
    folder = tmp_path / "rasters"
    folder.mkdir()
    for k, size in enumerate((100, 120, 90)):
        write_geotiff(folder / f"r{k}.tif", square_image(size, [(20 + 5 * k, 30, 10)]))
    (folder / "r0.tif.aux.xml").write_text("<PAMDataset/>")  # a sidecar, not a raster
    (folder / "notes.csv").write_text("x,y\n")
    return folder


def test_expand_takes_files_folders_and_globs(rasters, tmp_path):
    names = lambda paths: [p.name for p in paths]  # noqa: E731
    assert names(expand_rasters([rasters])) == ["r0.tif", "r1.tif", "r2.tif"]
    assert names(expand_rasters([str(rasters / "r[12].tif")])) == ["r1.tif", "r2.tif"]
    assert names(expand_rasters([rasters / "r2.tif", rasters])) == ["r2.tif", "r0.tif", "r1.tif"]
    with pytest.raises(ConfigError, match=r"--raster .*nothing.tif: no raster file there"):
        expand_rasters([tmp_path / "nothing.tif"])
    other = tmp_path / "other"
    other.mkdir()
    write_geotiff(other / "r0.tif", square_image(64, []))
    with pytest.raises(ConfigError, match="same name 'r0'"):
        expand_rasters([rasters, other])


def test_each_raster_gets_its_catalogue_and_all_csv(ckpt, rasters, tmp_path):
    out = tmp_path / "out"
    combined = predict_rasters(ckpt, [rasters], out, gis=".gpkg", **OPTIONS)
    assert sorted(p.name for p in out.iterdir()) == [
        "all.csv",
        "r0.csv",
        "r0.gpkg",
        "r1.csv",
        "r1.gpkg",
        "r2.csv",
        "r2.gpkg",
    ]
    assert combined["raster"].unique().tolist() == ["r0", "r1", "r2"]
    for stem in ("r0", "r1", "r2"):
        own = pd.read_csv(out / f"{stem}.csv")
        mine = combined[combined["raster"] == stem].drop(columns="raster")
        assert len(own) == len(mine) > 0
        assert own["x"].to_numpy() == pytest.approx(mine["x"].to_numpy())
    assert len(pd.read_csv(out / "all.csv")) == len(combined)
    with pytest.raises(OutputError, match="r0.csv"):  # before predicting anything
        predict_rasters(ckpt, [rasters], out, **OPTIONS)


@pytest.mark.slow
def test_rasters_as_ray_tasks_give_the_same_catalogues(ckpt, rasters, tmp_path):
    ray = pytest.importorskip("ray")
    here = predict_rasters(ckpt, [rasters], tmp_path / "here", **OPTIONS)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        tasks = predict_rasters(
            ckpt, [rasters], tmp_path / "ray", ray=RayOptions(trial_cpus=1), **OPTIONS
        )
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(tasks, here)
    for stem in ("r0", "r1", "r2"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "ray" / f"{stem}.csv"),
            pd.read_csv(tmp_path / "here" / f"{stem}.csv"),
        )


def test_cli_predicts_a_folder_into_a_folder(ckpt, rasters, tmp_path, capsys):
    out = tmp_path / "cats"
    code, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        ckpt,
        "--raster",
        rasters,
        "--out",
        out,
        "--workers",
        0,
        "--tta",
        "none",
        "--gis",
        ".gpkg",
    )
    assert code == 0, err
    assert {"r0.csv", "r1.csv", "r2.csv", "all.csv", "r0.gpkg"} <= {p.name for p in out.iterdir()}
    code, err = run_cli(
        capsys, "predict", "--checkpoint", ckpt, "--raster", rasters, "--out", tmp_path / "a.csv"
    )
    assert_one_line_error(code, err, "--out", "is a folder")
