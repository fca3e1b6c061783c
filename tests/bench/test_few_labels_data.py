"""The few-labels benchmark's crater cases."""

from __future__ import annotations

from pathlib import Path

from bench.few_labels_data import crater_cases


def test_a_crater_case_does_not_change_with_the_other_counts_of_the_run(tmp_path: Path) -> None:
    """N=100 alone and N=100 beside N=300 read the same rasters (its finished trials stay valid)."""
    alone = crater_cases(tmp_path / "a", [100])[0]
    beside = {case.name: case for case in crater_cases(tmp_path / "b", [100, 300])}
    assert set(beside) == {"craters-N100", "craters-N300"}
    for split in ("train", "test"):
        for kind, pattern in (("images", "*.tif"), ("datasets", "*.csv")):
            a = sorted((alone.root / split / kind).glob(pattern))
            b = sorted((beside["craters-N100"].root / split / kind).glob(pattern))
            assert [p.name for p in a] == [p.name for p in b] and len(a) == 1
            assert a[0].read_bytes() == b[0].read_bytes(), (split, kind)
    n300 = beside["craters-N300"].root / "train" / "images"
    assert (
        next(n300.glob("*.tif")).stat().st_size
        > next((alone.root / "train" / "images").glob("*.tif")).stat().st_size
    )  # more labels, a longer band
