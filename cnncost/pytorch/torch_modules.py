"""PyTorch modules for spec features PyTorch has no module for, and the name tree helpers.

Pure torch, no cnncost imports: `cnncost export` copies this file's code verbatim into
the standalone model files it writes. Uneven padding (Keras ``same`` with an odd total)
is applied explicitly before the conv or pool (-inf for max pooling; for average pooling
that excludes padding, window sums divided by the count of real inputs); layer norm
over the channels of a feature map; a per-channel gate for ``mul``; channel shuffle.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _torch_pad(pads: tuple) -> tuple:
    """(top, bottom, left, right) -> F.pad order (left, right, top, bottom)."""
    top, bottom, left, right = pads
    return (left, right, top, bottom)


class PaddedConv2d(nn.Conv2d):
    """Conv2d with explicit, possibly uneven padding (Keras ``same``) applied first."""

    def __init__(self, *args: Any, pads: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "padding": 0})
        self.pads = tuple(pads)  # (top, bottom, left, right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, _torch_pad(self.pads)), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedMaxPool2d(nn.MaxPool2d):
    """MaxPool2d after explicit -inf padding (uneven, or more than PyTorch allows)."""

    def __init__(self, *args: Any, pads: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "padding": 0})
        self.pads = tuple(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, _torch_pad(self.pads), value=float("-inf")))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}"


class PaddedAvgPool2d(nn.AvgPool2d):
    """AvgPool2d after explicit zero padding (uneven, or more than PyTorch allows).

    With ``count_include_pad`` the padding counts in every window's divisor, as in
    PyTorch; without it (Keras ``same``), each window's sum is divided by the number of
    real inputs it covers.
    """

    def __init__(self, *args: Any, pads: tuple[int, ...], count_include_pad: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "padding": 0, "count_include_pad": True})
        self.pads = tuple(pads)
        self.include_pad = count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad = _torch_pad(self.pads)
        if self.include_pad:
            return super().forward(F.pad(x, pad))
        def window_sum(t: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(F.pad(t, pad), self.kernel_size, self.stride,
                                ceil_mode=self.ceil_mode, divisor_override=1)

        sums = window_sum(x)
        counts = window_sum(torch.ones_like(x[:1, :1]))
        return sums / counts

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pads={self.pads}, count_include_pad={self.include_pad}"


class GlobalPool(nn.Module):
    """Mean or max over all positions of each channel; C x 1 x 1, or C with keepdims off."""

    def __init__(self, mode: str, keepdims: bool) -> None:
        super().__init__()
        self.mode, self.keepdims = mode, keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.adaptive_avg_pool2d(x, 1) if self.mode == "avg" else F.adaptive_max_pool2d(x, 1)
        return y if self.keepdims else y.flatten(1)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, keepdims={self.keepdims}"


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels at each position of an N x C x H x W map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelShuffle(nn.Module):
    """Interleave channels across `groups` (ShuffleNet), as a view/transpose/reshape."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class Add(nn.Module):
    """Elementwise sum of equal-shaped inputs."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _broadcastable(x: torch.Tensor, rank: int) -> torch.Tensor:
    """A per-channel gate (N x C) as N x C x 1 x 1 against maps of `rank` dims."""
    return x.reshape(*x.shape, *([1] * (rank - x.dim())))


class Mul(nn.Module):
    """Elementwise product; a C x 1 x 1 (or C) gate scales each channel of a map."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        rank = max(x.dim() for x in xs)
        out = _broadcastable(xs[0], rank)
        for x in xs[1:]:
            out = out * _broadcastable(x, rank)
        return out


class Concat(nn.Module):
    """Concatenation along channels."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class ChannelSlice(nn.Module):
    """Channels [start, stop) of the input (a view)."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]

    def extra_repr(self) -> str:
        return f"start={self.start}, stop={self.stop}"


class Pad(nn.Module):
    """Constant, reflect or replicate padding of the spatial sides, and constant padding of
    the channels before and after (ResNet option-A shortcuts)."""

    def __init__(self, pads: tuple[int, ...], channels: tuple[int, ...] = (0, 0),
                 mode: str = "constant", value: float = 0.0) -> None:
        super().__init__()
        self.pads, self.channels = tuple(pads), tuple(channels)  # (top, bottom, left, right)
        self.mode, self.value = mode, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = _torch_pad(self.pads)
        if self.mode != "constant":
            return F.pad(x, spatial, mode=self.mode)
        return F.pad(x, (*spatial, *self.channels), value=self.value)

    def extra_repr(self) -> str:
        return (f"pads={self.pads}, channels={self.channels}, mode={self.mode!r}, "
                f"value={self.value}")


class CenterCrop(nn.Module):
    """The centred `size` window of each feature map (top/left offsets rounded down)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = tuple(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size
        top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
        return x[..., top:top + h, left:left + w]

    def extra_repr(self) -> str:
        return f"size={self.size}"


class Scale(nn.Module):
    """A learned factor per channel (layer scale): x * scale, broadcast over positions."""

    def __init__(self, channels: int, init: float = 1.0, rank: int = 3) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((channels, *([1] * (rank - 1))), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Rescaling(nn.Module):
    """x * scale + offset (Keras Rescaling)."""

    def __init__(self, scale: float, offset: float = 0.0) -> None:
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale
        return y + self.offset if self.offset else y

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


class Normalization(nn.Module):
    """(x - mean) / max(sqrt(variance), 1e-7) per channel (Keras Normalization); mean,
    variance and the sample count are buffers (Keras: non-trainable weights)."""

    def __init__(self, channels: int, rank: int = 3, epsilon: float = 1e-7) -> None:
        super().__init__()
        shape = (channels, *([1] * (rank - 1)))
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("variance", torch.ones(shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))
        self.epsilon = epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, variance = self.get_buffer("mean"), self.get_buffer("variance")
        return (x - mean) / torch.clamp(torch.sqrt(variance), min=self.epsilon)


class PartialBatchNorm(nn.Module):
    """Batch norm with only a learned scale (gamma) or only a learned shift (beta), as
    Keras' BatchNormalization(scale=False) or (center=False) builds it; running
    statistics as nn.BatchNorm (2C + 1 buffers)."""

    def __init__(self, num_features: int, eps: float, momentum: float, center: bool,
                 scale: bool) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if scale else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if center else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.get_buffer("num_batches_tracked").add_(1)
        mean, var = self.get_buffer("running_mean"), self.get_buffer("running_var")
        return F.batch_norm(x, mean, var, self.weight, self.bias, self.training,
                            self.momentum, self.eps)


class Group(nn.Module):
    """A name prefix shared by several layers (a block, stage or fused conv group).

    It only holds submodules; the model's forward pass calls the layers directly.
    """

    def forward(self, *_: Any) -> None:
        raise RuntimeError("a cnncost Group only holds layers; call the model instead")


def attach(root: nn.Module, name: str, module: nn.Module) -> None:
    """Place `module` at dotted `name` under `root`, creating Group containers for prefixes.

    Names go into ``_modules`` directly: a layer may be called ``add`` or ``train``,
    which ``add_module`` would refuse as clashing with an nn.Module attribute.
    """
    parent = root
    *prefixes, leaf = name.split(".")
    for part in prefixes:
        child = parent._modules.get(part)
        if child is None:
            child = Group()
            parent._modules[part] = child
        parent = child
    if leaf in parent._modules:
        # A group of this name already exists (layers named "a.b" before "a"): the
        # layer takes its place and keeps its children.
        existing = parent._modules[leaf]
        if existing is not None:
            module._modules.update(existing._modules)
    parent._modules[leaf] = module


def layer(root: nn.Module, name: str) -> nn.Module:
    """The module at dotted `name`, also where a name part is an nn.Module attribute
    (``train``, ``to``, ...), which ``get_submodule`` would resolve to the method."""
    module = root
    for part in name.split("."):
        child = module._modules[part]
        if child is None:
            raise KeyError(name)
        module = child
    return module
