import torch

from model.inference.merge import TileMerger, core_limits, covered_by_complete


def test_core_limits_partition_the_axis():
    offs, low, high = core_limits(100, 40, 10)
    assert offs.tolist() == [0, 30, 60]
    assert low.tolist() == [0.0, 35.0, 65.0]
    assert high.tolist() == [35.0, 65.0, 100.0]


def test_truncated_box_replaced_by_complete_one():
    m = TileMerger(70, 70, 40, 10)  # offsets 0, 30 on each axis
    # tile (0, 0): object x 35..45 is cut at x=40 (inner edge) -> truncated 35..40
    m.add(
        torch.tensor([[35.0, 5, 40, 15]]),
        torch.tensor([0.9]),
        torch.tensor([0]),
        torch.tensor([0, 0]),
    )
    # tile (0, 30): the same object whole, at 5..15 in tile coords
    m.add(
        torch.tensor([[5.0, 5, 15, 15]]),
        torch.tensor([0.8]),
        torch.tensor([0]),
        torch.tensor([0, 30]),
    )
    boxes, scores, _labels = m.merge(0.5)
    assert boxes.tolist() == [[35.0, 5.0, 45.0, 15.0]]
    assert scores.tolist() == [torch.tensor(0.8).item()]


def test_truncated_box_outside_core_is_dropped_and_raster_edge_is_not_inner():
    m = TileMerger(70, 70, 40, 10)
    # right inner edge of tile (0,0) with centre x=38.5 > core limit 35: dropped
    m.add(
        torch.tensor([[37.0, 5, 40, 15]]),
        torch.tensor([0.9]),
        torch.tensor([0]),
        torch.tensor([0, 0]),
    )
    # touching the raster's left edge: complete, kept
    m.add(
        torch.tensor([[0.0, 20, 4, 24]]),
        torch.tensor([0.9]),
        torch.tensor([0]),
        torch.tensor([0, 0]),
    )
    boxes, _, _ = m.merge(0.5)
    assert boxes.tolist() == [[0.0, 20.0, 4.0, 24.0]]


def test_object_larger_than_overlap_is_reported_as_pieces_one_per_core():
    m = TileMerger(70, 40, 40, 10)  # two tiles along rows only: offsets 0, 30
    # a 40-high object from y=15..55 is cut in both tiles
    m.add(
        torch.tensor([[5.0, 15, 15, 40]]),
        torch.tensor([0.9]),
        torch.tensor([0]),
        torch.tensor([0, 0]),
    )
    m.add(
        torch.tensor([[5.0, 0, 15, 25]]),
        torch.tensor([0.8]),
        torch.tensor([0]),
        torch.tensor([30, 0]),
    )
    boxes, _, _ = m.merge(0.5)
    # documented limitation: both pieces (centres 27.5 and 42.5 lie in different cores)
    assert sorted(boxes[:, 1].tolist()) == [15.0, 30.0]


def test_covered_by_complete_respects_labels():
    boxes = torch.tensor([[0.0, 0, 5, 10], [0.0, 0, 10, 10]], dtype=torch.float64)
    trunc = torch.tensor([True, False])
    assert covered_by_complete(boxes, torch.tensor([0, 0]), trunc).tolist() == [True, False]
    assert covered_by_complete(boxes, torch.tensor([0, 1]), trunc).tolist() == [False, False]


def test_empty_merge():
    boxes, scores, labels = TileMerger(50, 50, 20, 5).merge(0.5)
    assert boxes.shape == (0, 4) and len(scores) == 0 and len(labels) == 0


def test_covered_by_complete_equals_the_all_pairs_rule():
    g = torch.Generator().manual_seed(0)
    n = 600
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2000
    wh = 2 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 120
    boxes = torch.cat([xy, xy + wh], 1)
    labels = torch.randint(0, 2, (n,), generator=g)
    trunc = torch.rand(n, generator=g) < 0.3
    got = covered_by_complete(boxes, labels, trunc, chunk=37)
    t, f = boxes[trunc], boxes[~trunc]
    lt = torch.maximum(t[:, None, :2], f[None, :, :2])
    rb = torch.minimum(t[:, None, 2:], f[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(2)
    area = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    same = labels[trunc][:, None] == labels[~trunc][None]
    want = torch.zeros(n, dtype=torch.bool)
    want[trunc] = ((inter / area[:, None] >= 0.5) & same).any(1)
    assert want.sum() > 10 and torch.equal(got, want)
