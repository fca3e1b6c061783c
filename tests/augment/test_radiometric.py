import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.transforms.v2 import functional as tvf

from augment.radiometric import (
    Brightness,
    Contrast,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    PercentileStretch,
)
from tiling.errors import ConfigError

RADIOMETRIC = [
    Brightness(0.3),
    Contrast(0.3),
    Gamma(0.3),
    GaussianNoise(0.1),
    GaussianBlur(1.5),
    PercentileStretch(5.0, 5.0),
    Brightness(0.3, per_band=False),
    PercentileStretch(5.0, 5.0, per_band=False),
]
IDS = [f"{t.name}{'' if t.per_band else '-shared'}" for t in RADIOMETRIC]


def batch(seed, b=3, c=4, h=12, w=10, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    images = (torch.rand(b, c, h, w, generator=gen, dtype=torch.float64) * 4000 + 100).to(dtype)
    targets = [
        {
            "boxes": torch.tensor([[1.0, 1.0, 4.0, 5.5]] * i).reshape(-1, 4),
            "labels": torch.arange(i),
        }
        for i in range(b)
    ]
    return images, targets


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(list(zip(RADIOMETRIC, IDS, strict=True))),
    st.integers(0, 10_000),
    st.sampled_from([1, 2, 3, 7]),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_shape_dtype_kept_and_boxes_untouched(pair, seed, bands, dtype):
    transform, _ = pair
    # 8 samples: a float32 blur is the identity to the last bit when its sigma is under about
    # 0.17 px (1 draw of U(0, 1.5) in 9); all 8 that small: odds 3e-8 (3 samples: 1e-3, seen).
    images, targets = batch(seed, b=8, c=bands, dtype=dtype)
    out, new = transform(images, targets, torch.Generator().manual_seed(seed))
    assert out.shape == images.shape and out.dtype == dtype
    assert bool(torch.isfinite(out).all())
    for old, got in zip(targets, new, strict=True):
        assert torch.equal(old["boxes"], got["boxes"]) and torch.equal(old["labels"], got["labels"])
    assert not torch.equal(out, images)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(list(zip(RADIOMETRIC, IDS, strict=True))),
    st.integers(0, 10_000),
    st.floats(1e-3, 300.0),
    st.floats(-1e4, 1e4),
)
def test_equivariant_to_units(pair, seed, a, b):
    """T(a x + b) = a T(x) + b: nothing depends on the bit depth or the units."""
    transform, _ = pair
    images, targets = batch(seed, dtype=torch.float64)
    params = transform.sample_like(images, torch.Generator().manual_seed(seed))
    out, _ = transform.apply(images, targets, params)
    out_scaled, _ = transform.apply(a * images + b, targets, params)
    torch.testing.assert_close(out_scaled, a * out + b, rtol=1e-9, atol=1e-7 * (abs(b) + a * 4100))


def test_blur_matches_torchvision_gaussian_blur():
    images, targets = batch(0, b=2, c=3, h=16, w=16)
    blur = GaussianBlur(max_sigma=1.0)
    params = {"u": torch.tensor([[0.6], [0.95]])}
    out, _ = blur.apply(images, targets, params)
    for i, sigma in enumerate([0.6, 0.95]):
        ref = tvf.gaussian_blur(images[i], kernel_size=[7, 7], sigma=[sigma, sigma])
        torch.testing.assert_close(out[i], ref, rtol=1e-5, atol=1e-2)


def test_values_of_simple_cases():
    images = torch.tensor([0.0, 10.0, 20.0, 30.0]).reshape(1, 1, 2, 2)
    target = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    out, _ = Contrast().apply(images, target, {"u": torch.tensor([[2.0]])})
    assert out.flatten().tolist() == [-15.0, 5.0, 25.0, 45.0]
    out, _ = Gamma().apply(images, target, {"u": torch.tensor([[0.0]])})
    torch.testing.assert_close(out, images)
    out, _ = PercentileStretch().apply(
        images, target, {"low": torch.tensor([[0.0]]), "high": torch.tensor([[1.0]])}
    )
    torch.testing.assert_close(out, images)
    flat = torch.full((1, 2, 4, 4), 5.0)
    for t in (Gamma(), PercentileStretch(), Brightness(), Contrast()):
        out, _ = t(flat, target)
        assert torch.equal(out, flat), t.name


def test_same_seed_same_output_different_seed_differs():
    images, targets = batch(3)
    t = GaussianNoise(0.2)
    a, _ = t(images, targets, torch.Generator().manual_seed(5))
    b, _ = t(images, targets, torch.Generator().manual_seed(5))
    c, _ = t(images, targets, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_radiometric_errors():
    images, targets = batch(0, c=3)
    with pytest.raises(ConfigError, match="brightness max_delta=-1"):
        Brightness(-1)
    with pytest.raises(ConfigError, match=r"contrast max_factor=1.5 must lie in \[0, 1.0\)"):
        Contrast(1.5)
    with pytest.raises(ConfigError, match="gamma max_log_gamma"):
        Gamma(-0.1)
    with pytest.raises(ConfigError, match="noise max_sigma"):
        GaussianNoise(-1)
    with pytest.raises(ConfigError, match="blur max_sigma=30"):
        GaussianBlur(30)
    with pytest.raises(ConfigError, match="stretch max_low=60"):
        PercentileStretch(60)
    with pytest.raises(ConfigError, match="noise needs the image size"):
        GaussianNoise().sample(2)
    params = Brightness().sample(3, channels=2)
    with pytest.raises(ConfigError, match="drawn for 2 bands, images have 3"):
        Brightness().apply(images, targets, params)
    params = GaussianNoise().sample(3, channels=3, size=(5, 5))
    with pytest.raises(ConfigError, match="noise was drawn for shape"):
        GaussianNoise().apply(images, targets, params)
    with pytest.raises(ConfigError, match=r"dtype torch.int64.*images.float\(\)"):
        Brightness()(images.long(), targets)
