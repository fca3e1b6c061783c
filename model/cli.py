"""The command line, ``raster-detect <command>``: the same functions the notebook calls.

Commands: ``predict`` (a checkpoint over a whole raster -> catalogue CSV and GIS file). Every
project error (bad input, bad option) ends the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tiling.errors import RasterDetectError
from tiling.sources import configure_gdal


def build_parser() -> argparse.ArgumentParser:
    """The ``raster-detect`` parser with one sub-parser per command."""
    from model.inference import predict

    parser = argparse.ArgumentParser(
        prog="raster-detect",
        description="Train RetinaNet detectors on tiles of very large rasters; run them over "
        "whole rasters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, module, summary in (
        ("predict", predict, "run a checkpoint over a whole raster, write a catalogue"),
    ):
        sub = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``raster-detect``; returns the exit code (2 on a project error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    configure_gdal()  # GDAL's block cache capped unless the user set GDAL_CACHEMAX
    try:
        return int(args.run(args))
    except RasterDetectError as err:
        message = " ".join(str(err).split())  # one line, whatever the cause's text
        sys.stderr.write(f"error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
