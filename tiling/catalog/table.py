"""Catalogue CSV files read strictly: the table's shape first, then the type of each used column.

The rules (every error names the file, the row and the column, and says what to change):

- The file is UTF-8 text (a byte-order mark is allowed), comma-separated, with one header row of
  unique, non-empty column names. A header that holds one name with ``;`` or a tab in it, or
  only numbers (other than pandas' ``0,1,2,...``), is refused with a hint (another separator; no
  header row).
- Every row has as many fields as the header. A row with more fields is an error naming the row
  (pandas would take the first field as an index and shift every column); so is a row with fewer.
  The one tolerated mismatch is a trailing comma on the header *and* on every row: an unnamed,
  wholly empty last column, which is dropped.
- Blank lines are skipped. Rows are counted as records with the header as row 1, as in
  :mod:`tiling.catalog.read`.
- Values are read as the text written in the file; :func:`typed_columns` converts only the
  columns the catalogue uses. Every used column must be filled on every row. ``label`` stays text
  as written (``1`` is the class ``"1"``, never ``1.0``), without surrounding spaces; an empty label
  is an error (there is no default class: drop the ``label`` column, or pass ``label=...`` to
  ``read_catalog``, to give every object one class). Every other used column (``x``, ``y``,
  ``diameter``, box corners, ...) must hold finite numbers, except RA/Dec columns read with
  ``coords="sky"``, which may be sexagesimal text.
- A header with no row below it is a catalogue of no objects (a warning); the tile store build
  refuses a store with no object at all.

The rows are parsed by pyarrow's CSV reader, every column as text (faster than pandas' own reader
here, and it reports the number of a malformed row); the header is read first with :mod:`csv`,
only to name the columns for it.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from tiling.errors import CatalogError

#: Roles whose column stays text; every other role holds numbers.
TEXT_ROLES = ("label",)
#: Roles that may hold sexagesimal text when ``coords="sky"``.
SKY_ROLES = ("x", "y")


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a catalogue CSV as text, after checking its shape.

    Args:
        path: the CSV file.

    Returns:
        ``DataFrame[N]`` of the file's columns (names stripped of spaces), every value a ``str``
        as written; position ``i`` is row ``i + 2`` of the file (header = row 1, blank lines
        skipped).

    Raises:
        CatalogError: unreadable file, bad header, or a row whose field count differs from the
            header's, naming the file and the row.
    """
    path = Path(path)
    raw = _header(path)
    names = [name.strip() for name in raw]
    _check_names(names, path)
    table = _read_rows(path, raw)
    frame = table.to_pandas()
    frame.columns = pd.Index(names)
    frame = _drop_trailing_empty(frame, path)
    if frame.empty:
        warnings.warn(f"{path}: the catalogue has a header but no rows (no objects)", stacklevel=2)
    return frame


def _header(path: Path) -> list[str]:
    """The header row's fields, as written (``csv`` module; a BOM is removed)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh, strict=True):
                if row:
                    return row
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CatalogError(f"{path}: cannot read the CSV ({err}); save it as UTF-8 CSV") from err
    raise CatalogError(
        f"{path}: cannot read the CSV (the file is empty); a catalogue starts with a header row "
        "such as x,y,diameter"
    )


def _check_names(names: list[str], path: Path) -> None:
    """Refuse another separator, a missing header, and duplicate or empty (non-last) names."""
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        raise CatalogError(
            f"{path}: the header {names[0]!r} is one column; the file seems separated by "
            "';', tabs or '|' rather than commas: save it as comma-separated CSV"
        )
    default = [str(i) for i in range(len(names))]  # pandas' labels of unnamed columns
    if names != default and all(_is_number(name) for name in names):
        raise CatalogError(
            f"{path}: the first row {names} holds only numbers, so the file has no header row; "
            "add one (e.g. x,y,diameter) naming the columns"
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in seen:
            raise CatalogError(
                f"{path}: columns {seen[name]} and {i} are both named {name!r} (row 1); rename "
                "one of them: a catalogue's column names must be unique"
            )
        seen[name] = i
    unnamed = [i for i, name in enumerate(names, start=1) if not name and i < len(names)]
    if unnamed:
        raise CatalogError(
            f"{path}: column {unnamed[0]} of the header (row 1) has no name; name it or remove it"
        )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path: Path, raw_names: list[str]) -> pa.Table:
    """Every row as text; a row with another field count raises, naming the row."""
    bad: list[pa_csv.InvalidRow] = []

    def first_bad(row: pa_csv.InvalidRow) -> str:
        bad.append(row)
        return "error"

    try:
        return pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(use_threads=False),  # row numbers are known
            parse_options=pa_csv.ParseOptions(invalid_row_handler=first_bad),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in raw_names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (OSError, pa.ArrowInvalid) as err:
        if bad:
            raise _shape_error(path, bad[0], [n.strip() for n in raw_names]) from err
        raise CatalogError(f"{path}: cannot read the CSV ({err}); save it as UTF-8 CSV") from err


def _shape_error(path: Path, row: pa_csv.InvalidRow, names: list[str]) -> CatalogError:
    """The error for a row whose field count differs from the header's."""
    fields = next(csv.reader([row.text]), [])
    extra = fields[len(names) :]
    where = f"{path}: row {row.number} has {row.actual_columns} field(s) but the header has "
    where += f"{row.expected_columns} ({', '.join(names)}); row text {row.text[:120]!r}"
    if row.text.count('"') % 2:
        fix = 'a quote (") opened in this row is never closed: close it or remove it'
    elif row.actual_columns < row.expected_columns:
        fix = "fill in the missing value(s) (an empty field between commas is allowed)"
    elif any(value.strip() for value in extra):
        fix = (
            f"the extra value(s) {extra} would shift every column: remove them, or name the "
            "extra column(s) in the header"
        )
    else:
        fix = "the extra field(s) are empty (a trailing comma): remove it from the rows"
    return CatalogError(f"{where}: {fix} (row 1 is the header)")


def _drop_trailing_empty(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Drop an unnamed last column that is empty on every row (a trailing comma everywhere)."""
    if len(frame.columns) < 2 or frame.columns[-1]:
        return frame
    last = frame.iloc[:, -1].str.strip()
    filled = np.flatnonzero((last != "").to_numpy())
    if filled.size:
        raise CatalogError(
            f"{path}: row {filled[0] + 2}, last column: value {frame.iloc[filled[0], -1]!r} is "
            "under a header with no name; name the column in the header (row 1)"
        )
    return frame.iloc[:, :-1]


def typed_columns(
    frame: pd.DataFrame, mapping: dict[str, str], path: str | Path, *, sky: bool = False
) -> pd.DataFrame:
    """Check and convert the columns a catalogue uses, by their role.

    Args:
        frame: the text table of :func:`read_table`.
        mapping: role (``x``, ``y``, ``diameter``, ``label``, ``xmin``, ...) -> column name.
        path: the CSV, for messages.
        sky: ``x``/``y`` are RA/Dec and may stay text (sexagesimal) when not all numbers.

    Returns:
        A copy of ``frame`` with the used columns stripped of spaces and converted: ``float64``
        for numbers, ``str`` for labels (and for sexagesimal RA/Dec).

    Raises:
        CatalogError: an empty value, or a value that is not a finite number, naming the row
            and the column.
    """
    path = Path(path)
    out = frame.copy()
    done: set[str] = set()
    missing = sorted({c for c in mapping.values() if c not in frame})
    if missing:
        raise CatalogError(
            f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}; check "
            "the column mapping (columns=...)"
        )
    for role, column in mapping.items():
        if column in done:
            continue
        values = frame[column].astype(str).str.strip()
        _require_filled(values, column, path, "label" if role in TEXT_ROLES else "value")
        if role in TEXT_ROLES:
            out[column] = values
        elif sky and role in SKY_ROLES:
            numbers = _parse_numbers(values)
            out[column] = values if numbers is None else numbers
        else:
            out[column] = _finite_numbers(values, column, path)
        done.add(column)
    return out


def _require_filled(values: pd.Series, column: str, path: Path, what: str) -> None:
    empty = np.flatnonzero((values == "").to_numpy())
    if empty.size:
        raise CatalogError(
            f"{path}: row {empty[0] + 2}, column {column!r}: empty {what} ({empty.size} row(s) "
            "in all); fill it in or remove the row (row 1 is the header)"
        )


def _parse_numbers(values: pd.Series) -> np.ndarray | None:
    """``float64[N]`` when every value parses as a number (NaN/inf included), else ``None``."""
    try:
        parsed = pc.cast(pa.array(values, type=pa.string()), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return parsed.to_numpy(zero_copy_only=False)


def _finite_numbers(values: pd.Series, column: str, path: Path) -> np.ndarray:
    numbers = _parse_numbers(values)
    if numbers is None:
        numbers = np.array([_float_or_nan(v) for v in values], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        text = values.iloc[bad[0]]
        shown = text if _is_number(text) else repr(text)  # nan, inf: a number, not finite
        raise CatalogError(
            f"{path}: row {bad[0] + 2}, column {column!r}: value {shown} is not a finite number "
            f"({bad.size} row(s) in all; row 1 is the header)"
        )
    return numbers


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
