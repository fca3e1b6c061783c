"""Many rasters, one catalogue each and one for all: here one after another, or as Ray tasks.

``predict_rasters(checkpoint, rasters, out_dir)`` runs :func:`~model.inference.predict.predict_raster`
over every raster and writes, in ``out_dir``::

    <stem>.csv        each raster's catalogue (its own coordinates: pixels, map, lon/lat)
    <stem><gis>       each raster's GIS file when ``gis`` names a format (".gpkg", ...) and the
                      raster has a map CRS
    all.csv           every catalogue, one after another, with a ``raster`` column (the stem)

With ``ray=RayOptions(...)`` each raster is one Ray task that reserves ``trial_cpus`` CPUs and
``trial_gpus`` GPUs (one GPU per raster on a GPU cluster) and starts its own window readers; the
per-raster files are written by the task, on the node that ran it, so ``out_dir`` must be on a
filesystem that every node shares. The rasters' catalogues are the same either way.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from model.ray_options import RayOptions
from tiling.catalog.pairing import SIDECAR_SUFFIXES
from tiling.errors import ConfigError

NOT_RASTERS = (".csv", ".txt", ".md", ".json", ".yaml", ".yml", ".xml", ".lbl", ".ckpt", ".pt")
COMBINED = "all.csv"


def expand_rasters(specs: Sequence[str | Path]) -> list[Path]:
    """Raster paths from files, folders (their raster files) and glob patterns, in order.

    Raises:
        ConfigError: a spec that matches no file, or two rasters with the same stem (their
            catalogues would have the same name).
    """
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if _is_raster_file(p))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(str(spec)) if _is_raster_file(Path(p)))
        if not matches:
            raise ConfigError(f"--raster {spec}: no raster file there (a file, a folder or a glob)")
        found += [p for p in matches if p not in found]
    stems: dict[str, Path] = {}
    for p in found:
        if p.stem in stems:
            raise ConfigError(
                f"rasters {stems[p.stem]} and {p} have the same name {p.stem!r}: their catalogues "
                "would overwrite each other; predict them into different folders"
            )
        stems[p.stem] = p
    return found


def _is_raster_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith(".")
        and not name.endswith(SIDECAR_SUFFIXES)
        and path.suffix.lower() not in NOT_RASTERS
    )


def predict_one(
    checkpoint: str | Path,
    raster: str | Path,
    out_dir: str | Path,
    gis: str | None,
    overwrite: bool,
    options: dict[str, Any],
) -> pd.DataFrame:
    """Predict one raster and write its catalogue (and GIS file); the catalogue."""
    from model.inference.predict import predict_raster
    from model.inference.writers import write_csv, write_gis
    from tiling.sources import open_raster

    raster, out_dir = Path(raster), Path(out_dir)
    frame = predict_raster(checkpoint, raster, **options)
    write_csv(frame, out_dir / f"{raster.stem}.csv", overwrite=overwrite)
    if gis:
        with open_raster(raster) as src:
            crs = src.crs_wkt if src.world == "map" and not src.world_problem else None
        if crs is not None:
            write_gis(frame, out_dir / f"{raster.stem}{gis}", crs_wkt=crs, overwrite=overwrite)
    return frame


def predict_rasters(
    checkpoint: str | Path,
    rasters: Sequence[str | Path],
    out_dir: str | Path,
    *,
    gis: str | None = None,
    overwrite: bool = False,
    ray: RayOptions | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Predict every raster; write each one's catalogue and ``all.csv``; the combined catalogue.

    Args:
        checkpoint: the model checkpoint (``best.ckpt``).
        rasters: raster files, folders or glob patterns (:func:`expand_rasters`).
        out_dir: the folder of the catalogues (created).
        gis: a GIS format suffix (``".gpkg"``, ``".geojson"``, ``".fgb"``, ``".parquet"``) for
            one GIS file per raster with a map CRS; None writes CSV only.
        overwrite: replace existing catalogues (default: refuse before predicting anything).
        ray: run each raster as a Ray task with ``trial_cpus`` CPUs and ``trial_gpus`` GPUs
            (``"auto"``: 1 when ``device`` is a GPU and the cluster has one); None predicts
            here, one raster after another.
        **options: keywords of :func:`~model.inference.predict.predict_raster` (``tta``,
            ``score_thresh``, ``workers``, ``device``...); ``progress`` is off on Ray.

    Returns:
        Every raster's catalogue with a ``raster`` column (the file stem), in raster order.

    Raises:
        ConfigError: no raster, duplicate stems, an unknown GIS suffix.
        OutputError: an existing catalogue without ``overwrite`` (checked before predicting).
    """
    from model.inference.writers import gis_driver
    from tiling.outputs import check_output_file

    paths = expand_rasters(rasters)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if gis is not None:
        gis = gis if gis.startswith(".") else f".{gis}"
        gis_driver(Path(f"x{gis}"), option="gis")
    for path in paths:
        outputs = [f"{path.stem}.csv", *([f"{path.stem}{gis}"] if gis else [])]
        for name in outputs:
            check_output_file(out_dir / name, inputs=[checkpoint, path], overwrite=overwrite)
    check_output_file(out_dir / COMBINED, overwrite=overwrite)
    if ray is None:
        frames = [predict_one(checkpoint, p, out_dir, gis, overwrite, options) for p in paths]
    else:
        frames = _on_ray(checkpoint, paths, out_dir, gis, overwrite, options, ray)
    combined = pd.concat(
        [f.assign(raster=p.stem) for p, f in zip(paths, frames, strict=True)], ignore_index=True
    )
    from model.inference.writers import write_csv

    write_csv(combined, out_dir / COMBINED, overwrite=overwrite)
    return combined


def _on_ray(
    checkpoint: str | Path,
    paths: Sequence[Path],
    out_dir: Path,
    gis: str | None,
    overwrite: bool,
    options: dict[str, Any],
    ray: RayOptions,
) -> list[pd.DataFrame]:
    """One Ray task per raster (results in raster order)."""
    import ray as ray_api

    from tiling.ray_session import ray_session

    quiet = {**options, "progress": False}
    with ray_session(ray.address, ray.num_cpus):
        gpus = ray.gpus_per_trial(str(options.get("device", "cpu")))
        task = ray_api.remote(num_cpus=ray.cpus_per_trial(), num_gpus=gpus)(predict_one)
        refs = [task.remote(checkpoint, p, out_dir, gis, overwrite, quiet) for p in paths]
        return list(ray_api.get(refs))
