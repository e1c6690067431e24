"""Sliding-window arithmetic shared by convolutions and poolings.

One place for the output-size formula, the four padding forms and the ceil-mode
rule, written exactly as PyTorch computes them, plus Keras/TensorFlow ``same``
padding (output ``ceil(in / stride)``, the odd pixel of padding at the end).
"""

from __future__ import annotations

from .base import OpError

Pads = tuple[int, int, int, int]  # (top, bottom, left, right)


def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras 'same' padding along one axis: (before, after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def resolve_pads(padding: object, hw: tuple[int, int], kernel: tuple[int, int],
                 stride: tuple[int, int], dilation: tuple[int, int]) -> Pads:
    """Padding field (already checked) -> explicit (top, bottom, left, right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = same_pads(hw[0], kernel[0], stride[0], dilation[0])
        left, right = same_pads(hw[1], kernel[1], stride[1], dilation[1])
        return (top, bottom, left, right)
    top, bottom, left, right = padding  # type: ignore[misc]  # checked: four ints
    return (top, bottom, left, right)


def window_out(size: int, kernel: int, stride: int, dilation: int, before: int, after: int,
               ceil_mode: bool = False, axis: str = "") -> int:
    """Output length of a sliding window along one axis (PyTorch's formula)."""
    span = (kernel - 1) * dilation + 1
    padded = size + before + after
    if span > padded:
        pad = f" + padding {before + after}" if before + after else ""
        dil = f" (dilated to {span})" if dilation > 1 else ""
        raise OpError(f"kernel {kernel}{dil} is larger than the padded input {axis}{padded} "
                      f"(input {size}{pad})")
    if ceil_mode:
        out = -(-(padded - span) // stride) + 1
        # PyTorch: the last window must start inside the input or the left padding.
        if (out - 1) * stride >= size + before:
            out -= 1
        return out
    return (padded - span) // stride + 1


def window_hw(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], pads: Pads, ceil_mode: bool = False) -> tuple[int, int]:
    h = window_out(hw[0], kernel[0], stride[0], dilation[0], pads[0], pads[1], ceil_mode,
                   "height ")
    w = window_out(hw[1], kernel[1], stride[1], dilation[1], pads[2], pads[3], ceil_mode,
                   "width ")
    return h, w


def fmt_pair(pair: tuple[int, int]) -> str:
    return f"{pair[0]}x{pair[1]}"
