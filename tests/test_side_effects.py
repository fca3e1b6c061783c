"""Importing the packages changes no environment variable and no warning filter."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]

CODE = """
import importlib, json, os, pkgutil, warnings
# third-party libraries first: what they set on import is theirs, not ours
for name in ("torch", "torchvision", "pytorch_lightning", "rasterio", "astropy.io.fits",
             "astropy.wcs", "pandas", "matplotlib.figure", "geopandas", "torchmetrics",
             "bokeh.plotting", "bokeh.models", "bokeh.layouts", "ray", "ray.tune"):
    importlib.import_module(name)
env, filters = dict(os.environ), list(warnings.filters)
imported = []
for package in ("tiling", "augment", "model", "plots"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
            imported.append(info.name)
changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
new = [str(f) for f in warnings.filters if f not in filters]
print(json.dumps({"modules": len(imported), "env": changed, "filters": new}))
"""


def test_importing_every_module_sets_no_environment_variable_or_warning_filter():
    env = {k: v for k, v in os.environ.items() if k != "GDAL_CACHEMAX"}
    out = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["modules"] > 50
    assert found["env"] == [] and found["filters"] == []


def test_configure_gdal_keeps_a_users_value(monkeypatch):
    from tiling.sources import configure_gdal

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    configure_gdal()
    assert os.environ["GDAL_CACHEMAX"] == "256"
    monkeypatch.setenv("GDAL_CACHEMAX", "64")
    configure_gdal()
    assert os.environ["GDAL_CACHEMAX"] == "64"
    configure_gdal(32, override=True)  # the readers' workers set their own cap
    assert os.environ["GDAL_CACHEMAX"] == "32"
