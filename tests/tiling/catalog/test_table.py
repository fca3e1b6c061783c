"""Catalogue CSVs with a bad shape, bad names or bad values: each one error naming file/row/column."""

import numpy as np
import pytest

from tiling.catalog import read_catalog
from tiling.catalog.table import read_table, typed_columns
from tiling.errors import CatalogError

pytestmark = pytest.mark.reliability


@pytest.fixture
def tif(make_geotiff):
    return make_geotiff("a.tif", np.zeros((100, 100), np.uint8))


def write(tmp_path, text, name="c.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "match"),
    [
        # pandas took the first field as the index: x=20, y=3, diameter=7, silently
        ("x,y,diameter\n10,20,3,7\n", r"c.csv: row 2 has 4 field\(s\) but the header has 3 .*\['7'\] would shift"),
        ("x,y,diameter\n1,2,3\n4,5,6\n10,20,3,7\n", r"c.csv: row 4 has 4 field\(s\)"),
        ("x,y,diameter\n1,2,3,\n4,5,6,\n", r"c.csv: row 2 .*empty \(a trailing comma\)"),
        ("x,y,diameter\n1,2,3\n4,5\n", r"c.csv: row 3 has 2 field\(s\) .*fill in the missing"),
        ("x,y,x\n1,2,3\n", r"c.csv: columns 1 and 3 are both named 'x'"),
        ("x,,diameter\n1,2,3\n", r"c.csv: column 2 of the header \(row 1\) has no name"),
        ("x,y,diameter,\n1,2,3,4\n", r"c.csv: row 2, last column: value '4' is under a header with no name"),
        ("x;y;diameter\n1;2;3\n", r"c.csv: the header 'x;y;diameter' is one column.*';'"),
        ("10,20,3\n11,21,4\n", r"c.csv: the first row .* only numbers, so the file has no header"),
        ("", r"c.csv: cannot read the CSV \(the file is empty\)"),
        ("\n\n", r"c.csv: cannot read the CSV \(the file is empty\)"),
    ],
    ids=["extra-first-row", "extra-later-row", "trailing-comma-rows", "short-row", "duplicate",
         "unnamed", "unnamed-filled", "semicolons", "no-header", "empty", "blank-lines"],
)  # fmt: skip
def test_bad_shapes_name_the_row(tif, tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(CatalogError, match=match):
        read_catalog(path, tif)


def test_pandas_numbered_columns_are_a_header(tif, tmp_path):
    path = write(tmp_path, "0,1,2\n10,20,3\n")
    df = read_catalog(path, tif, columns={"x": "0", "y": "1", "diameter": "2"})
    assert df[["x", "y", "diameter"]].to_numpy().tolist() == [[10, 20, 3]]


def test_trailing_comma_on_header_and_rows_is_dropped(tif, tmp_path):
    path = write(tmp_path, "x,y,diameter,\n10,20,3,\n30,40,5,\n")
    df = read_catalog(path, tif)
    assert df[["x", "y", "diameter"]].to_numpy().tolist() == [[10, 20, 3], [30, 40, 5]]


def test_labels_are_text_as_written(tif, tmp_path):
    path = write(
        tmp_path, "x,y,diameter,label\n1,1,2,1\n2,2,2,2\n3,3,2,01\n4,4,2, 1.0 \n5,5,2,NA\n"
    )
    df = read_catalog(path, tif)
    assert df.label.tolist() == ["1", "2", "01", "1.0", "NA"]
    assert df.x.dtype == np.float64


def test_empty_label_is_an_error_naming_the_row(tif, tmp_path):
    path = write(tmp_path, "x,y,diameter,label\n1,1,2,crater\n2,2,2,\n3,3,2,  \n")
    with pytest.raises(CatalogError, match=r"c.csv: row 3, column 'label': empty label \(2 row"):
        read_catalog(path, tif)
    mapped = write(tmp_path, "x,y,diameter,kind\n1,1,2,\n", "m.csv")
    with pytest.raises(CatalogError, match=r"m.csv: row 2, column 'kind': empty label"):
        read_catalog(mapped, tif, columns={"label": "kind"})


def test_every_used_column_is_typed(tif, tmp_path):
    boxes = write(tmp_path, "l,t,r,b\n1,1,3,3\n5,5,x9,8\n", "b.csv")
    cols = {"xmin": "l", "ymin": "t", "xmax": "r", "ymax": "b"}
    with pytest.raises(CatalogError, match=r"b.csv: row 3, column 'r': value 'x9' is not a finite"):
        read_catalog(boxes, tif, columns=cols)
    empty = write(tmp_path, "x,y,diameter\n1,,2\n", "e.csv")
    with pytest.raises(CatalogError, match=r"e.csv: row 2, column 'y': empty value"):
        read_catalog(empty, tif)
    wrong = write(tmp_path, "x,y,diameter\n1,1,2\n", "w.csv")
    with pytest.raises(CatalogError, match=r"w.csv: missing column\(s\) \['kind'\]"):
        read_catalog(wrong, tif, columns={"label": "kind"})


def test_unused_columns_are_left_as_text(tmp_path):
    frame = read_table(write(tmp_path, "x,y,diameter,note\n1,2,3,\n4,5,6,seen twice\n"))
    typed = typed_columns(frame, {"x": "x", "y": "y", "diameter": "diameter"}, "c.csv")
    assert typed["note"].tolist() == ["", "seen twice"]
    assert typed["diameter"].tolist() == [3.0, 6.0]


def test_spaces_bom_and_blank_lines(tif, tmp_path):
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffx , y, diameter,label\n\n 10 , 20 ,3, tree \n\n30,40,5,bush\n".encode())
    df = read_catalog(path, tif)
    assert df.x.tolist() == [10, 30] and df.label.tolist() == ["tree", "bush"]
    bad = write(tmp_path, "x,y,diameter\n\n1,2,3\n\n4,5,z\n", "blank.csv")
    # rows are records (header = row 1), blank lines are not counted
    with pytest.raises(CatalogError, match=r"blank.csv: row 3, column 'diameter': value 'z'"):
        read_catalog(bad, tif)


def test_header_only_catalogue_reads_as_no_objects(tif, tmp_path):
    path = write(tmp_path, "x,y,diameter,label\n")
    with pytest.warns(UserWarning, match=r"c.csv: the catalogue has a header but no rows"):
        df = read_catalog(path, tif)
    assert len(df) == 0 and list(df.columns) == ["x", "y", "diameter", "width", "height", "label"]


def test_sky_columns_may_stay_sexagesimal(tmp_path):
    frame = read_table(write(tmp_path, "ra,dec,d\n10:00:00,+02:30:00,1\n"))
    typed = typed_columns(frame, {"x": "ra", "y": "dec", "diameter": "d"}, "c.csv", sky=True)
    assert typed["ra"].tolist() == ["10:00:00"] and typed["d"].tolist() == [1.0]
    degrees = read_table(write(tmp_path, "ra,dec,d\n150.5,2.5,1\n", "deg.csv"))
    typed = typed_columns(degrees, {"x": "ra", "y": "dec", "diameter": "d"}, "d.csv", sky=True)
    assert typed["ra"].dtype == np.float64
