"""The opt-in varied terrain: the default field unchanged, the varied one harder."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from tiling.synthetic import varied
from tiling.synthetic.craters import CraterField, FieldParams

# sha256 prefixes of a 300 x 280 field (seed 7) rendered by the generator before `varied` existed
DEFAULT_PIXELS = "6ecce4268ea4adc4"
DEFAULT_CATALOGUE = "9985b82299037d81"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def test_default_field_is_byte_identical():
    field = CraterField.create(300, 280, 7, FieldParams())
    assert _sha(field.render_strip(0, 300).tobytes()) == DEFAULT_PIXELS
    assert _sha(field.catalogue().to_csv().encode()) == DEFAULT_CATALOGUE


def test_varied_field_differs_and_keeps_its_catalogue_inside():
    plain = CraterField.create(300, 280, 7, FieldParams())
    rough = CraterField.create(300, 280, 7, FieldParams(varied=True))
    a = plain.render_strip(0, 300).astype(float)
    b = rough.render_strip(0, 300).astype(float)
    assert np.abs(a - b).mean() > 500  # DN: patches and slopes change whole regions
    cat = rough.catalogue()
    assert cat["x"].between(0, 280).all() and cat["y"].between(0, 300).all()
    # same draws, then moved: the diameters are those of the default field (less any moved out)
    assert set(cat["diameter"]) <= set(plain.craters["diameter"])


def test_vary_craters_overlaps_and_flattens():
    rng = np.random.default_rng(0)
    n = 400
    craters = pd.DataFrame(
        {
            "x": rng.uniform(0, 5000, n).round(3),
            "y": np.sort(rng.uniform(0, 5000, n)).round(3),
            "diameter": rng.uniform(10, 20, n),
            "label": np.where(np.arange(n) % 2, "fresh", "degraded"),
            "relief": np.ones(n),
        }
    )
    out = varied.vary_craters(craters, np.random.default_rng(1))
    kept = out.merge(craters, on=["x", "y", "diameter"], how="inner")
    assert 0.2 < 1 - len(kept) / n < 0.4  # OVERLAP_FRACTION of the craters moved
    centres = out[["x", "y"]].to_numpy()
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(n) * 1e9
    assert (gaps.min(1) < out["diameter"].to_numpy()).mean() > 0.25  # their rims cross
    degraded = out["label"] == "degraded"
    lo, hi = varied.DEGRADED_RELIEF
    assert out.loc[degraded, "relief"].between(lo, hi).all()
    assert (out.loc[~degraded, "relief"] == 1).all()


def test_albedo_patches_range():
    noise = np.linspace(-1, 1, 101, dtype=np.float32)[None]
    factor = varied.albedo_patches(noise)
    assert factor.dtype == np.float32
    assert np.isclose(factor.min(), 1 - varied.ALBEDO_CONTRAST)
    assert np.isclose(factor.max(), 1 + varied.ALBEDO_CONTRAST)
