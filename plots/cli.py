"""The command line, ``raster-detect <command>``: the same functions the notebook calls.

Like ``main.ipynb``, the command line is an entry point where every package meets: ``train`` and
``evaluate`` write figures. It lives in :mod:`plots`, the package at the top (DESIGN: ``plots``
may import the others and none of them imports ``plots``), and hands each command its figure
writer (:mod:`plots.run_figures`). Commands, each implemented beside its concept
(``add_arguments``/``run``/``SUMMARY``):

- ``tiles`` (:mod:`tiling.store.command`): catalogues and rasters -> a tile store;
- ``train`` (:mod:`model.training.command`): a YAML file of the notebook's parameters -> the
  notebook's run folder (grid search);
- ``predict`` (:mod:`model.inference.command`): a checkpoint over a whole raster -> catalogue;
- ``evaluate`` (:mod:`model.evaluate_command`): a predicted catalogue against the truth.

Every bad option (out of range, missing, unknown) and every project error (bad input, unsafe
output) ends the command with one line ``error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from tiling.errors import ConfigError, RasterDetectError
from tiling.sources import configure_gdal

#: Command name -> the module implementing it.
COMMANDS = {
    "tiles": "tiling.store.command",
    "train": "model.training.command",
    "predict": "model.inference.command",
    "evaluate": "model.evaluate_command",
}


def _figure_writers() -> dict[str, Callable[..., Any]]:
    """Command name -> the figure writer its ``run`` takes (imported when the parser is built)."""
    from plots.run_figures import evaluation_files, training_figures

    return {"train": training_figures, "evaluate": evaluation_files}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a project error (one line, exit code 2 in :func:`main`)."""

    def error(self, message: str) -> NoReturn:
        """Raise ConfigError naming the option and the fix, instead of printing the usage."""
        raise ConfigError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The ``raster-detect`` parser with one sub-parser per command."""
    parser = OneLineParser(
        prog="raster-detect",
        description="Train RetinaNet detectors on tiles of very large rasters; run them over "
        "whole rasters.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.SUMMARY, description=module.SUMMARY)
        module.add_arguments(sub)
        sub.set_defaults(run=_runner(name, module.run))
    return parser


def _runner(name: str, run: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
    """``run``, given the command's figure writer when it has one (train, evaluate)."""
    if name not in ("train", "evaluate"):
        return run

    def with_figures(args: argparse.Namespace) -> int:
        return run(args, figures=_figure_writers()[name])

    return with_figures


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``raster-detect``; returns the exit code (2 on a bad option or input)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    configure_gdal()  # GDAL's block cache capped unless the user set GDAL_CACHEMAX
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except RasterDetectError as err:
        message = " ".join(str(err).split())  # one line, whatever the cause's text
        sys.stderr.write(f"error: {message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
