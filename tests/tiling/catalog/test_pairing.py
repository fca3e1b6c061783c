"""Pairing reports every file of both folders: paired, or skipped with a reason."""

import logging

import pytest

from tiling.catalog import pair_files
from tiling.errors import CatalogError

pytestmark = pytest.mark.reliability


def folders(tmp_path, images, datasets):
    im, ds = tmp_path / "im", tmp_path / "ds"
    im.mkdir(parents=True), ds.mkdir()
    for folder, names in ((im, images), (ds, datasets)):
        for name in names:
            if name.endswith("/"):
                (folder / name).mkdir()
            else:
                (folder / name).touch()
    return im, ds


def test_skipped_files_are_reported_and_warned(tmp_path, caplog):
    im, ds = folders(
        tmp_path,
        ["a.tif", "a.tfw", "a.tif.aux.xml", "lonely.tif", "sub/", ".hidden.tif"],
        ["a.csv", "notes.txt", "B.CSV", "old/", ".DS_Store"],
    )
    (im / "B.png").touch()
    caplog.set_level(logging.INFO, logger="tiling.catalog.pairing")
    with pytest.warns(UserWarning, match=r"paired 2 catalogue\(s\).*skipped 4 file\(s\)") as rec:
        pairing = pair_files(im, ds)
    text = str(rec[0].message)
    assert "lonely.tif (no catalogue lonely.csv" in text and "notes.txt (not a .csv" in text
    assert "a.tfw" not in text  # sidecars are expected: reported, not warned about
    assert [(p.name, p.raster.name, p.catalog.name) for p in pairing] == [
        ("B", "B.png", "B.CSV"),
        ("a", "a.tif", "a.csv"),
    ]
    table = pairing.table()
    assert (table["status"] == "paired").sum() == 4
    reasons = dict(zip(table["file"].map(lambda f: f.split("/")[-1]), table["reason"], strict=True))
    assert reasons["a.tfw"].startswith("a raster sidecar")
    assert reasons["old"] == "a folder in the catalogue folder"
    assert reasons["sub"] == "a folder in the image folder"
    assert ".DS_Store" not in reasons and ".hidden.tif" not in reasons
    assert "skipped" in caplog.text and "lonely.tif" in caplog.text


def test_nothing_skipped_no_warning(tmp_path, recwarn):
    im, ds = folders(tmp_path, ["a.tif", "a.prj"], ["a.csv"])
    pairing = pair_files(im, ds)
    assert len(pairing) == 1 and [s.path.name for s in pairing.skipped] == ["a.prj"]
    assert not [w for w in recwarn if "skipped" in str(w.message)]


def test_ambiguous_stems_are_errors(tmp_path):
    im, ds = folders(tmp_path, ["a.tif", "a.png"], ["a.csv"])
    with pytest.raises(CatalogError, match=r"several files could be the raster of .*a.csv.*a.png"):
        pair_files(im, ds)
    im, ds = folders(tmp_path / "two", ["a.tif"], ["a.csv", "a.CSV"])
    with pytest.raises(CatalogError, match=r"several catalogues share a stem"):
        pair_files(im, ds)


def test_pds_label_is_the_raster_beside_its_data(tmp_path):
    im, ds = folders(tmp_path, ["m.lbl", "m.img"], ["m.csv"])
    pairing = pair_files(im, ds)
    assert pairing[0].raster.name == "m.lbl"
    assert [(s.path.name, s.expected) for s in pairing.skipped] == [("m.img", True)]


def test_explicit_lists_report_the_rest(tmp_path):
    im, ds = folders(tmp_path, ["a.tif", "b.tif"], ["a.csv", "b.csv"])
    pairing = pair_files(im, ds, ["b.tif"], ["a.csv"])
    assert [p.raster.name for p in pairing] == ["b.tif"]
    assert sorted(s.path.name for s in pairing.skipped) == ["a.tif", "b.csv"]
