"""Benchmark: reading a large catalogue CSV strictly, against pandas' default reader.

:func:`tiling.catalog.table.read_table` checks every row's field count and reads the values as
text (pyarrow), and :func:`tiling.catalog.table.typed_columns` converts the used columns. This
writes a CSV of ``--rows`` rows (``x``, ``y``, ``diameter``, ``label`` and ``--extra`` more numeric
columns, like a crater database), then times, alternating ``--repeat`` times in one process, the
strict read (table + typed columns) and the old ``pandas.read_csv(path)``, and prints the medians
and their ratio (strict / pandas). The CSV goes to ``bench/out`` and is deleted.

Run: ``.venv/bin/python -m bench.catalog_read [--rows 1000000] [--extra 8] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tiling.catalog.table import read_table, typed_columns

OUT = Path(__file__).parent / "out"
ROLES = {"x": "x", "y": "y", "diameter": "diameter", "label": "label"}


def write_catalog(path: Path, rows: int, extra: int) -> None:
    """A CSV of ``rows`` objects with ``extra`` numeric columns beside x, y, diameter, label."""
    rng = np.random.default_rng(0)
    columns = {"x": rng.uniform(0, 7e4, rows), "y": rng.uniform(0, 7e4, rows)}
    columns["diameter"] = rng.pareto(2.0, rows) + 1.0
    columns["label"] = rng.choice(["fresh", "degraded", "1"], rows)
    columns |= {f"extra{i}": rng.normal(size=rows) for i in range(extra)}
    pd.DataFrame(columns).to_csv(path, index=False)


def strict_seconds(path: Path) -> float:
    """Seconds of ``read_table`` + ``typed_columns`` of the four used columns."""
    t0 = time.perf_counter()
    typed_columns(read_table(path), ROLES, path)
    return time.perf_counter() - t0


def pandas_seconds(path: Path) -> float:
    """Seconds of ``pandas.read_csv(path)`` (the reader before the strict one)."""
    t0 = time.perf_counter()
    pd.read_csv(path)
    return time.perf_counter() - t0


def main() -> None:
    """Write the CSV, time both readers alternately, print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--extra", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / "catalog_read.csv"
    write_catalog(path, args.rows, args.extra)
    try:
        strict, plain = [], []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(args.repeat):
                strict.append(strict_seconds(path))
                plain.append(pandas_seconds(path))
    finally:
        path.unlink()
    s, p = statistics.median(strict), statistics.median(plain)
    print(f"{args.rows} rows x {args.extra + 4} columns ({args.repeat} runs, medians)")
    print(f"strict read (read_table + typed_columns): {s:.2f} s")
    print(f"pandas.read_csv:                          {p:.2f} s")
    print(f"ratio strict / pandas: {s / p:.2f}")


if __name__ == "__main__":
    main()
