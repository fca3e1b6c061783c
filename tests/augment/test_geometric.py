import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as tvf

from augment.geometric import D4, RandomCropZoom, RandomRotation, d4_apply, d4_inverse
from tiling.errors import ConfigError

SETTINGS = settings(max_examples=30, deadline=None)


@st.composite
def image_and_boxes(draw, square=False):
    """Random float image [C, H, W] and boxes on a 1/16 px grid inside it."""
    h = draw(st.integers(4, 40))
    w = h if square else draw(st.integers(4, 40))
    c = draw(st.sampled_from([1, 2, 3, 5]))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(c, h, w, generator=gen) * 65535
    n = draw(st.integers(0, 6))
    x = torch.randint(0, 16 * w, (n, 2), generator=gen).sort(dim=1).values / 16
    y = torch.randint(0, 16 * h, (n, 2), generator=gen).sort(dim=1).values / 16
    x[:, 1] += 1 / 16
    y[:, 1] += 1 / 16
    boxes = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)
    return image, boxes


def target_of(boxes):
    return {"boxes": boxes, "labels": torch.arange(len(boxes))}


@SETTINGS
@given(image_and_boxes())
def test_d4_then_inverse_is_identity_bit_exact(sample):
    image, boxes = sample
    batch = torch.zeros(len(boxes), dtype=torch.long)
    for g in range(8):
        img1, box1 = d4_apply(image[None], boxes, batch, torch.tensor([g]))
        img2, box2 = d4_apply(img1, box1, batch, torch.tensor([d4_inverse(g)]))
        assert torch.equal(img2[0], image), g
        assert torch.equal(box2, boxes), g


@SETTINGS
@given(image_and_boxes())
def test_d4_transform_inverse_and_boxes_inside(sample):
    image, boxes = sample
    t = D4()
    for g in range(8):
        img1, tgt1 = t.apply(image, target_of(boxes), {"element": torch.tensor([g])})
        h, w = img1.shape[-2:]
        b = tgt1["boxes"]
        assert bool((b[:, 0] >= 0).all() and (b[:, 2] <= w).all())
        assert bool((b[:, 1] >= 0).all() and (b[:, 3] <= h).all())
        assert bool((b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
        back, tgt2 = t.apply(img1, tgt1, {"element": torch.tensor([d4_inverse(g)])})
        assert torch.equal(back, image)
        assert torch.equal(tgt2["boxes"], boxes)
        assert torch.equal(tgt2["labels"], torch.arange(len(boxes)))


def test_d4_matches_torchvision_flips_and_is_the_whole_group():
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 16, 16, generator=gen)
    boxes = torch.tensor([[1.0, 2.0, 5.0, 9.0], [0.0, 0.0, 16.0, 3.5]])
    batch = torch.zeros(2, dtype=torch.long)
    ref = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(16, 16))
    img, box = d4_apply(image[None], boxes, batch, torch.tensor([1]))
    assert torch.equal(img[0], tvf.horizontal_flip(image))
    assert torch.equal(box, tvf.horizontal_flip(ref).as_subclass(torch.Tensor))
    img, box = d4_apply(image[None], boxes, batch, torch.tensor([2]))
    assert torch.equal(img[0], tvf.vertical_flip(image))
    assert torch.equal(box, tvf.vertical_flip(ref).as_subclass(torch.Tensor))
    outs = {
        tuple(d4_apply(image[None], boxes, batch, torch.tensor([g]))[0].flatten().tolist())
        for g in range(8)
    }
    assert len(outs) == 8
    # the rotation by 90 degrees is one of the elements
    rot = torch.rot90(image, 1, dims=(-2, -1))
    assert any(
        torch.equal(d4_apply(image[None], boxes, batch, torch.tensor([g]))[0][0], rot)
        for g in range(8)
    )


def test_d4_non_square_single_image_and_batch_error():
    image = torch.rand(1, 6, 10)
    out, tgt = D4().apply(
        image, target_of(torch.tensor([[1.0, 1.0, 3.0, 2.0]])), {"element": torch.tensor([4])}
    )
    assert out.shape == (1, 10, 6)
    assert tgt["boxes"].tolist() == [[1.0, 1.0, 2.0, 3.0]]
    batch = torch.rand(2, 1, 6, 10)
    with pytest.raises(ConfigError, match="square images in batch mode"):
        D4()(batch, [target_of(torch.zeros(0, 4))] * 2)
    out, _ = D4(symmetries=(0, 1, 2, 3))(batch, [target_of(torch.zeros(0, 4))] * 2)
    assert out.shape == batch.shape


def render_disks(size, centres, radii):
    rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    image = torch.zeros(1, size, size)
    boxes = []
    for (cx, cy), r in zip(centres, radii, strict=True):
        image[0][(cols - cx) ** 2 + (rows - cy) ** 2 <= r**2] = 1.0
        boxes.append([cx - r, cy - r, cx + r, cy + r])
    return image, torch.tensor(boxes)


def disk_pixels_inside(image, boxes, labels, centres_count, tol):
    """Every bright pixel of each (separate) disk lies in its box +- tol."""
    size = image.shape[-1]
    rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    bright = image[0] > 0.5
    for box in boxes:
        x1, y1, x2, y2 = box.tolist()
        # pixels near this box's centre belong to its disk (disks are far apart)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        near = ((cols - cx).abs() <= (x2 - x1) / 2 + 3) & ((rows - cy).abs() <= (y2 - y1) / 2 + 3)
        mine = bright & near
        assert bool(((cols[mine] >= x1 - tol) & (cols[mine] <= x2 + tol)).all())
        assert bool(((rows[mine] >= y1 - tol) & (rows[mine] <= y2 + tol)).all())


@st.composite
def disk_scene(draw):
    r = draw(st.floats(3.0, 7.0))
    cx = draw(st.floats(10.0, 22.0))
    cy = draw(st.floats(10.0, 22.0))
    r2 = draw(st.floats(3.0, 7.0))
    cx2 = draw(st.floats(42.0, 54.0))
    cy2 = draw(st.floats(40.0, 54.0))
    return render_disks(64, [(cx, cy), (cx2, cy2)], [r, r2])


TRANSFORMS = [
    (D4(), 0.0),
    (RandomCropZoom(0.7, 1.5, min_visible=0.3), 1.0),
    (RandomRotation(30.0, min_visible=0.3), 1.0),
]


@SETTINGS
@given(disk_scene(), st.integers(0, 2**31 - 1))
@pytest.mark.parametrize("transform,tol", TRANSFORMS, ids=["d4", "crop_zoom", "rotate"])
def test_disk_stays_inside_its_box(transform, tol, scene, seed):
    image, boxes = scene
    gen = torch.Generator().manual_seed(seed)
    out, tgt = transform(image, target_of(boxes), gen)
    b = tgt["boxes"]
    assert bool((b >= 0).all() and (b <= 64).all())
    assert bool((b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all())
    disk_pixels_inside(out, b, tgt["labels"], 2, tol)
    if tol == 0.0:  # D4 moves the disk exactly: as many bright pixels as before
        assert int((out > 0.5).sum()) == int((image > 0.5).sum())


def test_rotation_keeps_box_size_and_rotates_centre():
    image = torch.zeros(1, 40, 40)
    boxes = torch.tensor([[25.0, 18.0, 31.0, 24.0]])  # centre (28, 21), 8 right of (20, 20)+1
    _, tgt = RandomRotation(90).apply(image, target_of(boxes), {"degrees": torch.tensor([90.0])})
    # clockwise on screen: (+8, +1) from the centre goes to (-1, +8)
    torch.testing.assert_close(tgt["boxes"], torch.tensor([[16.0, 25.0, 22.0, 31.0]]))


def test_crop_zoom_matches_torchvision_resized_crop():
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(3, 32, 32, generator=gen)
    boxes = torch.tensor([[10.0, 12.0, 14.0, 20.0]])
    # scale 2, window 16x16 at (x0, y0) = (8, 4): position = origin / (W - W / s)
    params = {"scale": torch.tensor([2.0]), "position": torch.tensor([[8 / 16, 4 / 16]])}
    out, tgt = RandomCropZoom(1.0, 2.0).apply(image, target_of(boxes), params)
    ref = tvf.resized_crop(image, top=4, left=8, height=16, width=16, size=[32, 32])
    torch.testing.assert_close(out[:, 1:-1, 1:-1], ref[:, 1:-1, 1:-1])
    ref_boxes = tvf.resized_crop(
        tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(32, 32)), 4, 8, 16, 16, [32, 32]
    )
    torch.testing.assert_close(tgt["boxes"], ref_boxes.as_subclass(torch.Tensor))


def test_crop_zoom_out_fills_with_band_mean_and_drops_hidden_boxes():
    image = torch.full((2, 20, 20), 7.0)
    image[1] = 3.0
    boxes = torch.tensor([[0.0, 0.0, 4.0, 4.0], [15.0, 15.0, 20.0, 20.0]])
    params = {"scale": torch.tensor([0.5]), "position": torch.tensor([[1.0, 1.0]])}
    out, tgt = RandomCropZoom(0.5, 1.0).apply(image, target_of(boxes), params)
    torch.testing.assert_close(out[0], torch.full((20, 20), 7.0))
    torch.testing.assert_close(out[1], torch.full((20, 20), 3.0))
    # zoom out by 2 with the image at the far corner: origin (-20, -20)
    assert tgt["boxes"].tolist() == [[10.0, 10.0, 12.0, 12.0], [17.5, 17.5, 20.0, 20.0]]
    params = {"scale": torch.tensor([2.0]), "position": torch.tensor([[0.0, 0.0]])}
    _, tgt = RandomCropZoom(1.0, 2.0, min_visible=0.5).apply(image, target_of(boxes), params)
    assert tgt["boxes"].tolist() == [[0.0, 0.0, 8.0, 8.0]]
    assert tgt["labels"].tolist() == [0]


def test_crop_zoom_scales_diameter():
    target = {**target_of(torch.tensor([[4.0, 4.0, 8.0, 8.0]])), "diameter": torch.tensor([4.0])}
    params = {"scale": torch.tensor([1.5]), "position": torch.tensor([[0.0, 0.0]])}
    _, tgt = RandomCropZoom(1.0, 2.0).apply(torch.rand(1, 20, 20), target, params)
    assert tgt["diameter"].tolist() == [6.0]


def test_crop_zoom_scales_width_and_height():
    boxes = torch.tensor([[4.0, 4.0, 12.0, 8.0]])
    target = {**target_of(boxes), "width": torch.tensor([8.0]), "height": torch.tensor([4.0])}
    params = {"scale": torch.tensor([1.5]), "position": torch.tensor([[0.0, 0.0]])}
    _, tgt = RandomCropZoom(1.0, 2.0).apply(torch.rand(1, 20, 20), target, params)
    assert (tgt["width"].tolist(), tgt["height"].tolist()) == ([12.0], [6.0])


def test_d4_transpose_swaps_width_and_height():
    boxes = torch.tensor([[2.0, 4.0, 10.0, 8.0], [1.0, 1.0, 3.0, 5.0]])
    target = {
        **target_of(boxes),
        "width": torch.tensor([8.0, 2.0]),
        "height": torch.tensor([4.0, 4.0]),
    }
    for element, swapped in [(4, True), (5, True), (1, False), (3, False)]:
        _, tgt = D4().apply(torch.rand(1, 12, 12), target, {"element": torch.tensor([element])})
        x1, y1, x2, y2 = tgt["boxes"].unbind(1)
        torch.testing.assert_close(tgt["width"], x2 - x1)  # the fields follow the boxes
        torch.testing.assert_close(tgt["height"], y2 - y1)
        assert tgt["width"].tolist() == ([4.0, 4.0] if swapped else [8.0, 2.0])


@pytest.mark.parametrize("degrees", [90.0, 30.0, -60.0])
def test_rotation_turns_elongated_boxes_as_ellipses(degrees):
    """A 40 x 20 footprint turned by t has the box of the turned ellipse of half axes 20, 10."""
    image = torch.zeros(1, 100, 100)
    boxes = torch.tensor([[30.0, 40.0, 70.0, 60.0]])  # centred on the image centre
    target = {**target_of(boxes), "width": torch.tensor([40.0]), "height": torch.tensor([20.0])}
    _, tgt = RandomRotation(90).apply(image, target, {"degrees": torch.tensor([degrees])})
    t = torch.tensor(degrees).deg2rad()
    half_w = torch.hypot(20 * t.cos(), 10 * t.sin())
    half_h = torch.hypot(20 * t.sin(), 10 * t.cos())
    expected = torch.stack([50 - half_w, 50 - half_h, 50 + half_w, 50 + half_h])[None]
    torch.testing.assert_close(tgt["boxes"], expected)
    torch.testing.assert_close(tgt["width"], 2 * half_w[None])
    if degrees == 90.0:
        torch.testing.assert_close(tgt["boxes"], torch.tensor([[40.0, 30.0, 60.0, 70.0]]))


def test_geometric_errors():
    with pytest.raises(ConfigError, match=r"d4 symmetries=\[9\]"):
        D4(symmetries=(9,))
    with pytest.raises(ConfigError, match="0 < min_scale <= max_scale"):
        RandomCropZoom(1.5, 1.0)
    with pytest.raises(ConfigError, match="crop_zoom min_visible=2"):
        RandomCropZoom(min_visible=2)
    with pytest.raises(ConfigError, match="rotate max_degrees=200"):
        RandomRotation(200)
    with pytest.raises(ConfigError, match="rotate min_visible=-1"):
        RandomRotation(min_visible=-1)
