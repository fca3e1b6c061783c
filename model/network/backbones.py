"""Backbones with a feature pyramid (FPN) for RetinaNet, any number of input bands, no downloads.

Every backbone is built with ``weights=None`` and trainable normalisation layers
(``nn.BatchNorm2d`` or ``nn.GroupNorm``; never ``FrozenBatchNorm2d``), all layers trainable. The
FPN returns ``fpn_channels``-channel maps (256 by default, as torchvision) at strides 8, 16, 32 (P3-P5) plus P6/P7 (strides 64, 128) computed
from P5 (``LastLevelP6P7``); with ``stride4`` a stride-4 map (P2) comes first.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.detection.backbone_utils import (
    BackboneWithFPN,
    mobilenet_backbone,
    resnet_fpn_backbone,
)
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from tiling.errors import ConfigError

FPN_CHANNELS = 256
# Stage indices returned to the FPN for P2 (optional), P3, P4, P5.
_RESNET_LAYERS = {False: [2, 3, 4], True: [1, 2, 3, 4]}  # layer1 is stride 4, layer4 stride 32
_MOBILENET_STAGES = {False: [2, 3, 5], True: [1, 2, 3, 5]}  # strides 8, 16, 32 (4 with P2)


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that also takes a group holding a single value.

    ``torch.nn.functional.group_norm`` refuses an input where a group holds one value ("Expected
    more than 1 value per channel when training"), even in eval mode: with one channel per group
    (``fpn_channels=32`` in the heads' ``GroupNorm(32)``) a batch of one window whose coarsest
    pyramid level is 1 x 1 (a 128-px window at stride 128) cannot be predicted. The normalised
    value of a single-value group is 0 (its own mean), so such a group outputs the layer's bias;
    every other input gives exactly ``nn.GroupNorm``'s output. Parameters and state-dict keys
    are ``nn.GroupNorm``'s, so checkpoints load either way.
    """

    def forward(self, input: Tensor) -> Tensor:
        """Normalise FloatTensor[B, C, *] per group of C / num_groups channels; same shape."""
        return torch.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with gcd(32, channels) groups (mobilenet has 16-, 24- and 40-channel layers)."""
    return GroupNorm(math.gcd(32, num_channels), num_channels)


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """The norm-layer factory for ``ModelConfig.norm``: "batch" or "group" (both trainable)."""
    if norm == "batch":
        return nn.BatchNorm2d
    if norm == "group":
        return group_norm
    raise ConfigError(f"ModelConfig.norm={norm!r} is invalid: expected one of ['batch', 'group'].")


def build_backbone(
    name: str,
    *,
    in_channels: int = 3,
    stride4: bool = False,
    norm: str = "batch",
    fpn_channels: int = FPN_CHANNELS,
) -> BackboneWithFPN:
    """Build a randomly initialised backbone + FPN.

    Args:
        name: "resnet18", "resnet34", "resnet50" or "mobilenet_v3_large".
        in_channels: bands of the input image (the first convolution is rebuilt when != 3).
        stride4: also return the stride-4 level (P2).
        norm: "batch" or "group".
        fpn_channels: channels F of every pyramid map (torchvision's default is 256).

    Returns:
        A module mapping FloatTensor[B, in_channels, H, W] to an OrderedDict of
        FloatTensor[B, F, H/s, W/s] for s in (4,) 8, 16, 32, 64, 128.
    """
    layer = norm_layer(norm)
    extra = LastLevelP6P7(fpn_channels, fpn_channels)
    if name.startswith("resnet"):
        backbone = resnet_fpn_backbone(
            backbone_name=name,
            weights=None,
            norm_layer=layer,
            trainable_layers=5,
            returned_layers=_RESNET_LAYERS[stride4],
            extra_blocks=extra,
        )
    elif name == "mobilenet_v3_large":
        backbone = mobilenet_backbone(
            backbone_name=name,
            weights=None,
            fpn=True,
            norm_layer=layer,
            trainable_layers=6,
            returned_layers=_MOBILENET_STAGES[stride4],
            extra_blocks=extra,
        )
    else:
        raise ConfigError(
            f"ModelConfig.backbone={name!r} is invalid: expected one of "
            "['resnet18', 'resnet34', 'resnet50', 'mobilenet_v3_large']."
        )
    if in_channels != 3:
        replace_first_conv(backbone.body, in_channels)
    if fpn_channels != FPN_CHANNELS:  # torchvision's builders fix 256: rebuild the pyramid
        widths = [block[0].in_channels for block in backbone.fpn.inner_blocks]
        backbone.fpn = FeaturePyramidNetwork(widths, fpn_channels, extra_blocks=extra)
        backbone.out_channels = fpn_channels
    return backbone


def replace_first_conv(module: nn.Module, in_channels: int) -> str:
    """Replace the first ``nn.Conv2d`` of ``module`` by one taking ``in_channels`` bands.

    The new convolution keeps kernel, stride, padding, bias and output channels, with a fresh
    Kaiming initialisation.

    Returns:
        The dotted name of the replaced convolution (e.g. "conv1" or "0.0").
    """
    name, conv = next((n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=_pair(conv.kernel_size),
        stride=_pair(conv.stride),
        padding=conv.padding if isinstance(conv.padding, str) else _pair(conv.padding),
        dilation=_pair(conv.dilation),
        groups=1,
        bias=conv.bias is not None,
    )
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, child, new)
    return name


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A 2-d convolution parameter as the (h, w) pair that ``nn.Conv2d`` is typed to take."""
    return values[0], values[1]


def count_frozen_norms(module: nn.Module) -> int:
    """Number of ``FrozenBatchNorm2d`` layers and of norm layers with frozen parameters."""
    norms = (nn.BatchNorm2d, nn.GroupNorm)
    return sum(
        isinstance(m, FrozenBatchNorm2d)
        or (isinstance(m, norms) and not all(p.requires_grad for p in m.parameters()))
        for m in module.modules()
    )
