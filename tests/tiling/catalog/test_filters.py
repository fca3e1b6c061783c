import pandas as pd

from tiling.catalog.filters import (
    apply_filters,
    drop_duplicates,
    labels,
    max_diameter,
    min_diameter,
    where,
    within_raster,
)


def cat():
    return pd.DataFrame(
        {
            "x": [5.0, 5.5, 50, 99],
            "y": [5.0, 5, 50, 99],
            "diameter": [10.0, 10, 2, 40],
            "label": ["a", "a", "b", "a"],
        }
    )


def test_filters_report():
    df, rep = apply_filters(
        cat(), min_diameter(3), max_diameter(30), drop_duplicates(0.25), report=True
    )
    assert rep.removed.tolist() == [1, 1, 1] and len(df) == 1
    assert len(apply_filters(cat(), within_raster(100, 100, margin=2), labels(["a"]))) == 2
    assert len(apply_filters(cat(), where(lambda d: d[d.x > 10], name="east"))) == 2
