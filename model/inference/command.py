r"""``raster-detect predict``: a checkpoint over a whole raster, written as a catalogue.

Every check that can fail runs before the first window is read: the option ranges (argparse
``type=`` checkers of :mod:`tiling.options`), the outputs (:func:`tiling.outputs.check_output_file`:
never the checkpoint or the raster, a folder, a device or a link; an existing file only with
``--overwrite``), the GIS format (by suffix) and the raster's CRS that a GIS file needs::

    raster-detect predict --checkpoint runs/latest/best.ckpt --raster big.tif \
        --out big.csv --gis big.gpkg

Several rasters (files, folders, globs) write one catalogue per raster and ``all.csv`` into the
``--out`` folder (:mod:`model.inference.many`), here one after another or as Ray tasks::

    raster-detect predict --checkpoint best.ckpt --raster mosaics/ 'more/*.tif' \
        --out catalogues/ --gis .gpkg --engine ray --task-cpus 2
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from tiling import options as o
from tiling.errors import ConfigError, OutputError
from tiling.outputs import check_output_file

log = logging.getLogger(__name__)

SUMMARY = "run a checkpoint over a whole raster, write a catalogue (CSV, and a GIS file)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``raster-detect predict`` (see ``raster-detect predict --help``)."""
    p.add_argument("--checkpoint", required=True, type=Path, help="model checkpoint (.ckpt)")
    p.add_argument(
        "--raster",
        required=True,
        nargs="+",
        help="raster to run over; several, a folder or a glob: one catalogue each in --out",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output catalogue CSV; with several rasters a folder (<stem>.csv each, all.csv)",
    )
    p.add_argument(
        "--gis",
        "--gpkg",
        type=Path,
        help="also write a GIS file in the raster's CRS; the suffix chooses the format: .gpkg, "
        ".geojson/.json, .fgb, .parquet; with several rasters the suffix alone (default: none)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing outputs (default: refuse)"
    )
    p.add_argument(
        "--tile-size", type=o.positive_int, help="window side [px] (default: the checkpoint's)"
    )
    p.add_argument(
        "--overlap",
        type=o.non_negative_int,
        help="pixels shared by neighbouring windows, less than the tile size [px] "
        "(default: tile size / 4)",
    )
    p.add_argument(
        "--score-thresh",
        type=o.probability,
        help="minimum score of a detection, 0 to 1 (default: the F1-best threshold on validation "
        "stored in the checkpoint, else its config's)",
    )
    p.add_argument(
        "--nms-thresh",
        type=o.probability,
        help="NMS IoU threshold, 0 to 1 (default: the checkpoint's)",
    )
    p.add_argument(
        "--tta",
        type=o.choice("none", "flips", "d4"),
        default="flips",
        help="test-time augmentation: none, flips (4 views) or d4 (8 views), fused per window; "
        "4 or 8 times the compute (default: flips, the notebook's)",
    )
    p.add_argument(
        "--batch-size", type=o.positive_int, default=8, help="windows per forward pass (default: 8)"
    )
    p.add_argument(
        "--workers",
        type=o.non_negative_int,
        default=2,
        help="processes reading windows, 0 reads in this process (default: 2)",
    )
    p.add_argument(
        "--device", type=o.device, default="cpu", help="cpu, cuda, cuda:<index>, mps (default: cpu)"
    )
    p.add_argument(
        "--engine",
        type=o.choice("local", "ray"),
        default="local",
        help="several rasters: local (one after another) or ray (one Ray task each) "
        "(default: local)",
    )
    p.add_argument(
        "--ray-address",
        help="a running Ray cluster (auto, host:6379) (default: an embedded Ray on this machine)",
    )
    p.add_argument(
        "--task-cpus", type=o.positive_float, default=2.0, help="CPUs per raster task (default: 2)"
    )
    p.add_argument(
        "--task-gpus",
        type=o.or_auto(o.non_negative_float),
        default="auto",
        help="GPUs per raster task; auto: 1 with --device cuda on a cluster with GPUs, else 0 "
        "(default: auto)",
    )


def run(args: argparse.Namespace) -> int:
    """Check the options and outputs, predict, write the catalogue(s); exit code 0."""
    from model.inference.many import expand_rasters
    from model.inference.predict import predict_raster
    from model.inference.writers import write_csv, write_gis

    rasters = expand_rasters(args.raster)
    if len(rasters) > 1 or args.engine == "ray" or not Path(args.raster[0]).is_file():
        return run_many(args, rasters)
    args.raster = rasters[0]
    crs_wkt = check_arguments(args)
    frame = predict_raster(
        args.checkpoint,
        args.raster,
        **predict_options(args),
    )
    write_csv(frame, args.out, overwrite=args.overwrite)
    if args.gis:
        write_gis(frame, args.gis, crs_wkt=crs_wkt, overwrite=args.overwrite)
    log.info("%d objects -> %s", len(frame), ", ".join(str(p) for p in (args.out, args.gis) if p))
    return 0


def predict_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of ``predict_raster`` that the options set (one raster or many)."""
    return {
        "tile_size": args.tile_size,
        "overlap": args.overlap,
        "batch_size": args.batch_size,
        "score_thresh": args.score_thresh,
        "nms_thresh": args.nms_thresh,
        "workers": args.workers,
        "device": args.device,
        "tta": None if args.tta == "none" else args.tta,
    }


def run_many(args: argparse.Namespace, rasters: list[Path]) -> int:
    """Several rasters (or one on Ray): one catalogue each and ``all.csv`` in the ``--out`` folder."""
    from model.inference.many import predict_rasters
    from model.ray_options import RayOptions

    if args.out.suffix.lower() == ".csv":
        raise ConfigError(
            f"--out {args.out}: with several rasters (or --engine ray) --out is a folder that "
            "receives <stem>.csv for each raster and all.csv; give a folder name"
        )
    ray = (
        RayOptions(address=args.ray_address, trial_cpus=args.task_cpus, trial_gpus=args.task_gpus)
        if args.engine == "ray"
        else None
    )
    combined = predict_rasters(
        args.checkpoint,
        rasters,
        args.out,
        gis=args.gis.suffix or args.gis.name if args.gis else None,
        overwrite=args.overwrite,
        ray=ray,
        **predict_options(args),
    )
    log.info("%d objects in %d rasters -> %s", len(combined), len(rasters), args.out)
    return 0


def check_arguments(args: argparse.Namespace) -> str | None:
    """Refuse what would fail after predicting; the raster's CRS (WKT) when ``--gis`` is given.

    Raises:
        ConfigError: ``--overlap`` not below ``--tile-size``.
        OutputError: an unsafe or existing output, an unknown GIS suffix, or ``--gis`` for a
            raster without a map CRS.
    """
    from model.inference.writers import gis_driver

    if args.tile_size is not None and args.overlap is not None and args.overlap >= args.tile_size:
        raise ConfigError(
            f"--overlap {args.overlap} must be smaller than --tile-size {args.tile_size}; "
            "make the overlap about the largest object diameter"
        )
    inputs = [args.checkpoint, args.raster]
    check_output_file(args.out, option="--out", inputs=inputs, overwrite=args.overwrite)
    if not args.gis:
        return None
    gis_driver(args.gis, option="--gis")
    check_output_file(args.gis, option="--gis", inputs=inputs, overwrite=args.overwrite)
    if Path(args.gis).resolve() == Path(args.out).resolve():
        raise OutputError(f"--gis {args.gis} is the --out file too; give the two different names")
    return raster_crs(args.raster)


def raster_crs(raster: Path) -> str:
    """The raster's map CRS as WKT, or a RasterError saying why a GIS file cannot be written."""
    from tiling.sources import open_raster

    with open_raster(raster) as src:
        src.require_map("--gis (a GIS file)")
        return str(src.crs_wkt)
