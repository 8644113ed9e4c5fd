"""LEADER (Cappelli et al., pyfing 0.7.3, MIT): end-to-end minutiae from a raw 500 dpi print, as a
torch module that loads pyfing's trained weights (converted once by `lab.pretrained`).

A port rather than Keras 3 on its torch backend: the same weights give the same minutiae, with one
runtime (torch) and no Keras import, and run faster here (docs/experiments.md). The architecture is
pyfing's, layer for layer: a context encoder-decoder at half resolution, an attention gate, a
refinement encoder-decoder, and three heads at full resolution (minutia probability, direction, type),
then non-maximum suppression of the smoothed probability. Layer names are pyfing's, so the converted
weight file maps one to one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZE_MULTIPLE = 32  # five halvings in each encoder
QUALITY_THRESHOLD = 0.6  # pyfing's default on the suppressed probability
_LN_EPS = 1e-3  # Keras LayerNormalization's default


class _ChannelNorm(nn.Module):
    """Keras LayerNormalization on a channels-last tensor: each pixel normalised over its channels."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # on the (N, H, W, C) view of a channels-last tensor torch's layer norm is one pass: LEADER's 24
        # norms took ~87 ms on one thread against ~120 as separate mean, variance and scaling passes
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, _LN_EPS)
        return y.permute(0, 3, 1, 2)


def _gelu(x: torch.Tensor) -> torch.Tensor:
    """GELU written over `x` (always a fresh activation here): the same values, and ~2x faster on
    LEADER's largest maps than a new output tensor."""
    out: torch.Tensor = torch.ops.aten.gelu_(x)
    return out


_ONEDNN: bool = torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]


class _Pointwise(nn.Conv2d):
    """A 1 x 1 convolution always computed by oneDNN. For a 1 x 1 kernel, one image and one thread torch
    falls back to its reference convolution (ConvParams::use_mkldnn), slower here; with two
    threads it takes oneDNN anyway, so the values no longer depend on the threads an extraction gets."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.float32 or not _ONEDNN:
            return super().forward(x)
        out: torch.Tensor = torch.ops.aten.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride,
                                                              self.dilation, self.groups)
        return out


def _conv(cin: int, cout: int, k: int, dilation: int = 1, bias: bool = True, groups: int = 1) -> nn.Conv2d:
    if k == 1:
        return _Pointwise(cin, cout, 1, bias=bias)
    return nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=bias, groups=groups)


class _Stem(nn.Module):
    def __init__(self, filters: int, max_pool: bool) -> None:
        super().__init__()
        self.conv = _conv(1, filters, 5)
        self.dilated_conv = _conv(1, filters, 5, dilation=2)
        self.ln = _ChannelNorm(2 * filters)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _gelu(self.ln(torch.cat([self.conv(x), self.dilated_conv(x)], 1)))
        return F.max_pool2d(x, 2) if self.max_pool else F.avg_pool2d(x, 2)


class _SepConv(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = _conv(cin, cin, 5, bias=False, groups=cin)
        self.pointwise = _conv(cin, cout, 1)
        self.ln = _ChannelNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _gelu(self.ln(self.pointwise(self.depthwise(x))))


class _InverseBottleneck(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise_conv = _conv(cin, cin, 7, bias=False, groups=cin)
        self.ln = _ChannelNorm(cin)
        self.conv_exp = _conv(cin, 4 * cin, 1)
        self.conv_red = _conv(4 * cin, cin, 1)
        self.conv_adj = _conv(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv_red(_gelu(self.conv_exp(self.ln(self.depthwise_conv(x)))))
        out: torch.Tensor = self.conv_adj(x + y)
        return out


def _down(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[1] // 2
    return torch.cat([F.max_pool2d(x[:, :half], 2), F.avg_pool2d(x[:, half:], 2)], 1)


def _up(x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
    x = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return x if skip is None else torch.cat([x, skip], 1)


def _encode_decode(x: torch.Tensor, encoder: nn.ModuleList, decoder: nn.ModuleList) -> torch.Tensor:
    """A U: each encoder level's output is kept and halved; each decoder level's is doubled and joined to it."""
    skips = []
    for block in encoder:
        x = block(x)
        skips.append(x)
        x = _down(x)
    for i in reversed(range(len(decoder))):
        x = _up(decoder[i](x), skips[i])
    return x


class _Head(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.ibc = _InverseBottleneck(cin, 6)
        self.conv1 = _conv(6, 4, 1)
        self.ln = _ChannelNorm(4)
        self.conv2 = _conv(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _gelu(self.conv2(self.ln(self.conv1(_up(self.ibc(x))))))


_CONTEXT = (16, 32, 64, 128)
_REFINE_ENC = (32, 64, 128, 32)
_REFINE_DEC = (20, 42, 91, 27)


class LeaderNet(nn.Module):
    """(N, 1, H, W) grey levels 0-255, H and W multiples of 32 -> (N, 4, H, W): minutia probability,
    direction (radians, atan2 of the direction head), ending probability, smoothed probability (what
    `local_maxima` suppresses to pyfing's minutiae)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem0, self.stem1 = _Stem(8, True), _Stem(16, False)
        self.enc0 = nn.ModuleList(_SepConv(cin, c) for cin, c in zip((16, *_CONTEXT[:-1]), _CONTEXT, strict=True))
        dec_in = (64, 128, 256, 128)  # after each level's upsampling and skip
        self.dec0 = nn.ModuleList(_SepConv(dec_in[i], _CONTEXT[i]) for i in range(4))
        self.attention = nn.ModuleList(_conv(32, 16, 3, dilation=d) for d in (1, 3, 6))
        self.attention_s = _conv(48, 32, 1)
        self.enc1 = nn.ModuleList(_InverseBottleneck(cin, c) for cin, c in zip((64, *_REFINE_ENC[:-1]), _REFINE_ENC, strict=True))
        dec1_in = (106, 219, 59, 32)
        self.dec1 = nn.ModuleList(_InverseBottleneck(dec1_in[i], _REFINE_DEC[i]) for i in range(4))
        self.heads = nn.ModuleList(_Head(52) for _ in range(3))
        self.pos, self.dir, self.typ = _conv(4, 1, 5), _conv(4, 2, 5), _conv(4, 1, 5)
        self.register_buffer("blur", _gaussian5(), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, x1 = self.stem0(image), self.stem1(image)
        x = _encode_decode(x, self.enc0, self.dec0)
        gate = torch.sigmoid(self.attention_s(torch.cat([_gelu(c(x)) for c in self.attention], 1)))
        x = torch.cat([x * gate, x1], 1)
        x = _encode_decode(x, self.enc1, self.dec1)
        h = [head(x) for head in self.heads]
        pos = torch.sigmoid(self.pos(h[0]))
        d = self.dir(h[1])
        direction = torch.atan2(d[:, 1:2], d[:, 0:1])
        typ = torch.sigmoid(self.typ(h[2]))
        blur: torch.Tensor = self.blur  # type: ignore[assignment]
        smooth = F.conv2d(pos, blur, padding=2)
        return torch.cat([pos, direction, typ, smooth], 1)


def _gaussian5() -> torch.Tensor:
    # OpenCV's getGaussianKernel(5, 0), which pyfing uses: for sizes up to 7 with no sigma it is the
    # fixed binomial kernel, not a sampled Gaussian
    g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    return torch.outer(g, g)[None, None]


@dataclass(frozen=True)
class LeaderMinutiae:
    """Minutiae in the image's pixels: (n, 5) float32 x, y, direction (radians, pyfing's: counter-clockwise
    from the x axis with y up),
    ending (1) or bifurcation (0), quality (the suppressed probability)."""

    points: np.ndarray


LeaderForward = Callable[[torch.Tensor], torch.Tensor]


def padded_size(n: int) -> int:
    return -(-n // SIZE_MULTIPLE) * SIZE_MULTIPLE


NMS_RADIUS = 3  # pyfing's 7 x 7 non-maximum suppression


def local_maxima(smooth: np.ndarray, threshold: float = QUALITY_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels of `smooth` (H, W) at or above `threshold` that equal the maximum of
    their 7 x 7 neighbourhood: pyfing's suppression (a stride-1 max pool over the whole map, ~20 ms a
    window here), computed at the few pixels above the threshold only. Same pixels, ties included."""
    ys, xs = np.nonzero(smooth >= threshold)
    r = NMS_RADIUS
    padded = np.pad(smooth, r, constant_values=-np.inf)
    best = np.full(len(ys), -np.inf, smooth.dtype)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            np.maximum(best, padded[ys + dy, xs + dx], out=best)
    keep = smooth[ys, xs] >= best
    return ys[keep], xs[keep]


def minutiae_from_maps(maps: np.ndarray, top: int, left: int, h: int, w: int,
                       threshold: float = QUALITY_THRESHOLD) -> LeaderMinutiae:
    """(4, H, W) network output over the padded canvas -> the minutiae of the image at (`top`, `left`),
    `h` x `w`, in the image's pixels (suppression sees the whole canvas, as pyfing's does)."""
    ys, xs = local_maxima(maps[3], threshold)
    inside = (ys >= top) & (ys < top + h) & (xs >= left) & (xs < left + w)
    ys, xs = ys[inside], xs[inside]
    points = np.stack([xs - left, ys - top, maps[1, ys, xs], (maps[2, ys, xs] >= 0.5), maps[3, ys, xs]], 1)
    return LeaderMinutiae(points.astype(np.float32).reshape(-1, 5))


def maps(net: LeaderForward, image: np.ndarray) -> tuple[np.ndarray, int, int]:
    """LEADER's (4, H', W') output over one 500 dpi grey image (H, W) uint8, padded as pyfing pads it
    (centred, with the image's top-left grey level), and the image's top and left in it."""
    h, w = image.shape
    ph, pw = padded_size(h), padded_size(w)
    top, left = (ph - h) // 2, (pw - w) // 2
    canvas = np.full((ph, pw), image[0, 0], np.float32)
    canvas[top : top + h, left : left + w] = image
    with torch.inference_mode():
        batch = torch.from_numpy(canvas)[None, None].contiguous(memory_format=torch.channels_last)
        out = net(batch)[0].contiguous().numpy()
    return out, top, left


def run(net: LeaderForward, image: np.ndarray) -> LeaderMinutiae:
    """Minutiae of one 500 dpi grey image (H, W) uint8."""
    out, top, left = maps(net, image)
    return minutiae_from_maps(out, top, left, *image.shape)


MAX_MINUTIAE = 80  # the best by quality, so a template's size stays bounded as with the hand-made extraction


MinutiaeFinder = Callable[[np.ndarray], np.ndarray]  # 500 dpi (H, W) uint8 -> (n, 5) as LeaderMinutiae.points


def finder(net: LeaderForward) -> MinutiaeFinder:
    return lambda image: run(net, image).points


def window_minutiae(find: MinutiaeFinder, gray: np.ndarray, origin: tuple[int, int], foreground: np.ndarray,
                    cell_px: int) -> np.ndarray:
    """The minutiae `find` (LEADER's, `finder`) sees in the part of a 500 dpi image (H, W) that lies in the square window whose
    top-left corner is `origin` (row, column; the window may reach beyond the image), as (n, 3) float32
    x, y, direction in the window's pixels: what `MinutiaeTemplate.points` holds. Only the window is run
    through the network (the print's foreground, and its time), and only minutiae on the window's
    `foreground` (bool, one cell per `cell_px` block) are kept: on faint or smudged background LEADER finds
    minutiae that every such print shares, and those matched impostors (docs/experiments.md)."""
    y0, x0 = origin
    window = foreground.shape[0] * cell_px
    h, w = gray.shape
    top, left, bottom, right = max(y0, 0), max(x0, 0), min(y0 + window, h), min(x0 + window, w)
    if bottom - top < SIZE_MULTIPLE or right - left < SIZE_MULTIPLE:
        return np.zeros((0, 3), np.float32)
    found = find(np.ascontiguousarray(gray[top:bottom, left:right]))
    xs, ys = found[:, 0] + (left - x0), found[:, 1] + (top - y0)
    rows = np.clip((ys // cell_px).astype(np.int64), 0, foreground.shape[0] - 1)
    cols = np.clip((xs // cell_px).astype(np.int64), 0, foreground.shape[1] - 1)
    on_print = foreground[rows, cols]
    # pyfing's directions turn counter-clockwise with the y axis up; a template's turn with the image's rows
    points = np.stack([xs, ys, np.remainder(-found[:, 2], 2 * math.pi), found[:, 4]], 1)[on_print]
    best: np.ndarray = points[np.argsort(-points[:, 3], kind="stable")[:MAX_MINUTIAE], :3].astype(np.float32)
    return best
