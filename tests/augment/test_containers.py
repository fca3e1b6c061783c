import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from augment import (
    D4,
    Brightness,
    Compose,
    GaussianBlur,
    GaussianNoise,
    Identity,
    OneOf,
    PackedTargets,
    RandomApply,
    RandomCropZoom,
    RandomRotation,
    build_transform,
    take_params,
)
from tiling.errors import ConfigError

ROTATING = Compose(
    [
        RandomApply(RandomRotation(20.0), p=0.5),
        OneOf([GaussianNoise(0.1), GaussianBlur(1.0), Identity()], weights=(1, 1, 2)),
    ]
)


def batch(seed, b=6, c=2, size=32):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(b, c, size, size, generator=gen) * 1000
    targets = []
    for i in range(b):
        n = i % 4
        xy = torch.rand(n, 2, generator=gen) * (size - 8)
        d = 2 + torch.rand(n, 1, generator=gen) * 6
        targets.append(
            {
                "boxes": torch.cat([xy, xy + d], dim=1),
                "labels": torch.randint(0, 3, (n,), generator=gen),
                "diameter": d[:, 0],
                "tile_id": i,
            }
        )
    return images, targets


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["default", "rotating"]))
def test_batch_mode_equals_per_sample_mode(seed, recipe):
    transform = ROTATING if recipe == "rotating" else build_transform("default")
    images, targets = batch(seed)
    params = transform.sample_like(images, torch.Generator().manual_seed(seed))
    out, new = transform.apply(images, targets, params)
    assert len(new) == len(targets)
    for i in range(len(images)):
        one, tgt = transform.apply(images[i], targets[i], take_params(params, i))
        torch.testing.assert_close(one, out[i], rtol=1e-5, atol=1e-3)
        assert torch.equal(tgt["boxes"], new[i]["boxes"])
        assert torch.equal(tgt["labels"], new[i]["labels"])
        assert torch.equal(tgt["diameter"], new[i]["diameter"])
        assert new[i]["tile_id"] == i
        b = new[i]["boxes"]
        assert bool((b >= 0).all() and (b <= 32).all())


def test_same_seed_same_output():
    transform = build_transform("default")
    images, targets = batch(0)
    a, ta = transform(images, targets, torch.Generator().manual_seed(1))
    b, tb = transform(images, targets, torch.Generator().manual_seed(1))
    c, _ = transform(images, targets, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb, strict=True))
    torch.manual_seed(3)
    d, _ = transform(images[0], targets[0])
    torch.manual_seed(3)
    e, _ = transform(images[0], targets[0])
    assert torch.equal(d, e)


def test_random_apply_and_one_of_choose_per_sample():
    images, targets = batch(1, b=64)
    never, _ = RandomApply(Brightness(0.5), p=0.0)(images, targets)
    assert torch.equal(never, images)
    always, _ = RandomApply(Brightness(0.5), p=1.0)(images, targets)
    assert bool((always != images).flatten(1).any(1).all())
    some, _ = RandomApply(Brightness(0.5), p=0.5)(images, targets, torch.Generator().manual_seed(0))
    changed = (some != images).flatten(1).any(1)
    assert 0 < int(changed.sum()) < 64
    params = OneOf([Identity(), Brightness(0.5)], weights=(0, 1)).sample(50)
    assert bool((params["choice"] == 1).all())


def test_packed_targets_round_trip_and_subset_merge():
    _, targets = batch(2)
    packed = PackedTargets.pack(targets)
    assert packed.size == 6 and set(packed.fields) == {"diameter"}
    back = packed.unpack()
    for old, new in zip(targets, back, strict=True):
        assert torch.equal(old["boxes"], new["boxes"]) and new["tile_id"] == old["tile_id"]
    index = torch.tensor([1, 3])
    part = packed.subset(index)
    assert part.size == 2 and part.unpack()[1]["tile_id"] == 3
    part.boxes = part.boxes + 1
    merged = packed.merge(index, part).unpack()
    assert torch.equal(merged[3]["boxes"], targets[3]["boxes"] + 1)
    assert torch.equal(merged[2]["boxes"], targets[2]["boxes"])


def test_container_errors():
    images, targets = batch(0, b=2)
    with pytest.raises(ConfigError, match="random_apply p=1.5"):
        RandomApply(Identity(), p=1.5)
    with pytest.raises(ConfigError, match="one_of needs at least one"):
        OneOf([])
    with pytest.raises(ConfigError, match=r"one_of weights=\[1.0\] must be 2"):
        OneOf([Identity(), D4()], weights=(1,))
    with pytest.raises(ConfigError, match="1 targets for a batch of 2"):
        D4()(images, targets[:1])
    with pytest.raises(ConfigError, match=r"images have shape \(32, 32\)"):
        D4()(images[0, 0], targets[0])
    bad = {"boxes": torch.zeros(2, 4), "labels": torch.zeros(3, dtype=torch.long)}
    with pytest.raises(ConfigError, match="target 0 has 2 boxes but 3 labels"):
        RandomCropZoom()(images[0], bad)
