"""Run ``raster-detect`` in-process (``plots.cli.main``) and check its one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from plots.cli import main
from tests.conftest import write_geotiff


def run_cli(capsys, *args: object) -> tuple[int, str]:
    """``(exit code, stderr)`` of ``raster-detect <args>``."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and one stderr line ``error: ...`` holding every fragment."""
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and err.endswith("\n"), err
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"


def write_square_data(
    root: Path, names: tuple[str, ...] = ("a", "b", "c"), size: int = 128
) -> Path:
    """``root/images/<name>.tif`` (uint8, bright squares, UTM) and ``root/datasets/<name>.csv``."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "datasets").mkdir()
    for name in names:
        image = rng.normal(20, 3, (1, size, size)).clip(0, 255).astype(np.uint8)
        rows = []
        for x0 in range(8, size - 20, 28):
            for y0 in range(8, size - 20, 28):
                side = int(rng.integers(8, 14))
                image[0, y0 : y0 + side, x0 : x0 + side] = 200
                rows.append((x0 + side / 2, y0 + side / 2, float(side)))
        write_geotiff(root / "images" / f"{name}.tif", image)
        pd.DataFrame(rows, columns=["x", "y", "diameter"]).to_csv(
            root / "datasets" / f"{name}.csv", index=False
        )
    return root
