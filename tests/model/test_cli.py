import pytest

from model.cli import main
from tests.conftest import write_geotiff
from tests.model.fakes import square_image

ANCH = ((8,), (16,), (24,), (32,), (48,))


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    assert "--checkpoint" in capsys.readouterr().out


def test_cli_bad_checkpoint_exits_2(tmp_path, capsys):
    path = write_geotiff(tmp_path / "r.tif", square_image(100, []))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    code = main(
        [
            "predict",
            "--checkpoint",
            str(bad),
            "--raster",
            str(path),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "bad.ckpt" in err and not (tmp_path / "o.csv").exists()


def test_cli_writes_csv_and_gpkg(tmp_path):
    from model.config import ModelConfig
    from model.network.checkpoint import save_model_checkpoint
    from model.network.factory import build_retinanet

    cfg = ModelConfig(in_channels=1, tile_size=64, anchor_sizes=ANCH, score_thresh=0.0)
    ckpt = save_model_checkpoint(build_retinanet(cfg).eval(), cfg, tmp_path / "m.ckpt")
    path = write_geotiff(tmp_path / "r.tif", square_image(100, [(10, 10, 8)]))
    out, gpkg = tmp_path / "o.csv", tmp_path / "o.gpkg"
    args = [
        "predict",
        "--checkpoint",
        str(ckpt),
        "--raster",
        str(path),
        "--out",
        str(out),
        "--gpkg",
        str(gpkg),
        "--workers",
        "0",
        "--overlap",
        "16",
    ]
    assert main(args) == 0
    assert out.exists() and gpkg.exists()


def test_cli_band_mismatch_exits_2(tmp_path, capsys):
    from model.config import ModelConfig
    from model.network.checkpoint import save_model_checkpoint
    from model.network.factory import build_retinanet

    cfg = ModelConfig(in_channels=3, tile_size=64, anchor_sizes=ANCH)
    ckpt = save_model_checkpoint(build_retinanet(cfg).eval(), cfg, tmp_path / "m.ckpt")
    path = write_geotiff(tmp_path / "r.tif", square_image(100, []))
    code = main(
        [
            "predict",
            "--checkpoint",
            str(ckpt),
            "--raster",
            str(path),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2 and "1 band(s) but the model expects 3" in capsys.readouterr().err
