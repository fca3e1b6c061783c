"""Smoke run of main.ipynb through papermill on a tiny generated data set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_help_notebook_lists_every_parameter():
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(ROOT / "main.ipynb")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    nb = json.loads((ROOT / "main.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    names = [ln.split("=")[0].strip() for ln in "".join(cell["source"]).splitlines() if " = " in ln]
    assert {"images_dir", "datasets_dir", "image_filenames", "dataset_filenames", "columns"} <= set(
        names
    )
    assert {"coords", "diameter_unit", "output_dir", "seed", "workers", "smoke"} <= set(names)
    for name in names:
        lines = out.splitlines()
        at = next((i for i, ln in enumerate(lines) if ln.strip().startswith(f"{name}:")), None)
        assert at is not None, f"{name} missing from papermill --help-notebook"
        # help follows "(default ...)" on the same line, or wrapped onto the next one
        help_text = lines[at].split(")", 1)[1].strip() or lines[at + 1].strip()
        assert "(default" in lines[at] and len(help_text) > 5, f"{name} has no help"


def test_notebook_is_committed_clean():
    nb = json.loads((ROOT / "main.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    sources = ["".join(c["source"]) for c in code]
    assert not any(
        line.lstrip().startswith(("def ", "class ")) for s in sources for line in s.splitlines()
    )


def smoke_parameters(tmp_path, data, **parameters):
    """Notebook parameters of a smoke run on ``data`` (images/, datasets/), writing in tmp_path."""
    return {
        "images_dir": str(data / "images"),
        "datasets_dir": str(data / "datasets"),
        "tiles_dir": str(tmp_path / "tiles"),
        "output_dir": str(tmp_path / "run"),
        "smoke": True,
        "workers": 0,
        **parameters,
    }


def run_smoke(tmp_path, data, **parameters):
    """Execute main.ipynb with smoke settings on ``data`` (images/, datasets/); the output dir."""
    import papermill

    out_dir = tmp_path / "run"
    papermill.execute_notebook(
        str(ROOT / "main.ipynb"),
        str(tmp_path / "main.ipynb"),
        parameters=smoke_parameters(tmp_path, data, **parameters),
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    return out_dir


@pytest.mark.slow
def test_smoke_run(tmp_path):
    from tiling.synthetic import generate_dataset

    generate_dataset(tmp_path / "data", small=True, seed=0)
    out_dir = run_smoke(tmp_path, tmp_path / "data")
    figures = sorted(p.name for p in (out_dir / "figures").glob("*.png"))
    assert any(name.startswith("overview_") for name in figures)
    assert "size_frequency.png" in figures
    assert (out_dir / "grid_results.csv").exists()
    assert (out_dir / "best.ckpt").exists()
    assert {"tiles_train.png", "augmentations.png", "grid_heatmap.png", "detections.png"} <= set(
        figures
    )
    assert "matches.png" in figures
    results = pd.read_csv(out_dir / "grid_results.csv")
    assert len(results) == 2 and (results["status"] == "done").all()
    assert "score_thresh_f1@flips" in results.columns  # chosen with the notebook's default views
    pred = pd.read_csv(out_dir / "predictions.csv")
    assert {"x", "y", "diameter", "score", "label", "map_x", "map_y", "lon", "lat"} <= set(
        pred.columns
    )
    assert (out_dir / "predictions.gpkg").exists()
    assert "precision" in json.loads((out_dir / "evaluation.json").read_text())["summary"]


@pytest.mark.slow
def test_smoke_run_on_the_star_field(tmp_path):
    """The star field, its two trials on an embedded Ray, both at once (1 CPU each)."""
    pytest.importorskip("ray")
    from tiling.synthetic.starfield import generate_star_field

    generate_star_field(tmp_path / "sky", small=True, seed=0)
    out_dir = run_smoke(
        tmp_path,
        tmp_path / "sky",
        columns={"x": "ra", "y": "dec", "diameter": "diameter_arcsec"},
        coords="sky",
        diameter_unit="arcsec",
        min_diameter=4.0,
        input_stretch="zscale",
        test_rasters=[],
        engine="ray",
        trial_cpus=1.0,
        max_concurrent_trials=2,
        tta="none",
    )
    assert (out_dir / "ray" / "tune").is_dir()  # Tune's own records of the two trials
    pred = pd.read_csv(out_dir / "predictions.csv")
    assert {"x", "y", "diameter", "score", "label", "ra", "dec"} <= set(pred.columns)
    assert not (out_dir / "predictions.gpkg").exists()  # no map CRS on the sky
    results = pd.read_csv(out_dir / "grid_results.csv")
    assert len(results) == 2 and (results["status"] == "done").all()
    assert not [c for c in results.columns if "@" in c]  # one pass only: no thresholds of views
