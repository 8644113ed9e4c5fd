"""The embedding network: a small residual CNN with a spatial head, L2-normalised output.

A residual trunk reduces the 250-dpi ridge map to a 10x10 grid of 128-channel texture descriptors
(each cell ~1.3 mm, a few ridges). The head keeps the coarse spatial layout (5x5 cells) because where
ridge patterns sit relative to each other identifies a finger more than their average does.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1: nn.Module = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2: nn.Module = nn.BatchNorm2d(cout)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.skip(x))


class FingerprintNet(nn.Module):
    def __init__(self, embedding_dim: int = 256, width: int = 32, enhanced_input: bool = False) -> None:
        super().__init__()
        # which of the two prepared channels the network reads (preprocess.Prepared.tensor)
        self.input_channel = 1 if enhanced_input else 0
        self.trunk_dtype = torch.float32  # what stem, trunk and reduce compute in (inference_copy)
        w = width
        self.embedding_dim = embedding_dim
        self.stem = nn.Sequential(
            nn.Conv2d(1, w // 2, 5, 2, 2, bias=False),
            nn.BatchNorm2d(w // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(w // 2, w, 3, 2, 1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
        )
        self.trunk = nn.Sequential(
            _Block(w, w, 1),
            _Block(w, 2 * w, 2),
            _Block(2 * w, 2 * w, 1),
            _Block(2 * w, 4 * w, 2),
            _Block(4 * w, 4 * w, 1),
        )
        self.reduce = nn.Sequential(nn.Conv2d(4 * w, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Dropout(0.2),
            nn.Linear(64 * 5 * 5, embedding_dim, bias=False),
            nn.BatchNorm1d(embedding_dim),
        )

    @staticmethod
    def width_of(state: dict[str, torch.Tensor]) -> int:
        """The width a state dict was trained at (its stem's second convolution's output channels), so a
        checkpoint without its card or recipe can still be rebuilt."""
        return int(state["stem.3.weight"].shape[0])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 160, 160) prepared images -> (B, 64, 10, 10) local ridge descriptors."""
        c = self.input_channel
        out: torch.Tensor = self.reduce(self.trunk(self.stem(x[:, c : c + 1].to(self.trunk_dtype))))
        return out.float()

    def embed_features(self, y: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(F.adaptive_avg_pool2d(y, 5).flatten(1)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, 160, 160) prepared images -> (B, embedding_dim) unit vectors."""
        return self.embed_features(self.features(x))

    def shifted_views(self, x: torch.Tensor, radius: int) -> torch.Tensor:
        """(B, K, embedding_dim): the embedding, then the embeddings of the same print moved by up to
        `radius` feature cells (1.6 mm each) in each direction, K = (2 radius + 1)^2.

        Two impressions of a finger rarely sit at the same place in the crop, and the spatial head is
        sensitive to where patterns sit. Comparing a probe's shifted views with a template recovers
        most of that misalignment for the cost of the head alone (one trunk pass).
        """
        return self.shifted_views_of(self.features(x), radius)

    def shifted_views_of(self, y: torch.Tensor, radius: int) -> torch.Tensor:
        """`shifted_views` from already computed features (B, C, H, W). The moved copies go through
        the head as one batch (per-sample in eval mode; one call instead of nine is ~0.5 ms of a
        single request)."""
        if radius == 0:
            return self.embed_features(y)[:, None]
        b, (h, w) = len(y), y.shape[-2:]
        padded = F.pad(y, (radius, radius, radius, radius))
        moves = [(0, 0)] + [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if dy or dx]
        moved = torch.cat([padded[..., radius - dy : radius - dy + h, radius - dx : radius - dx + w] for dy, dx in moves])
        return self.embed_features(moved).view(len(moves), b, -1).transpose(0, 1)


PRECISIONS = ("auto", "float32", "bfloat16")  # what serving may compute the trunk in; auto: bfloat16_is_native


def bfloat16_is_native() -> bool:
    """Whether oneDNN computes bfloat16 convolutions in hardware here (AVX512-BF16 or AMX): elsewhere they
    are emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def inference_copy(model: FingerprintNet, trunk_dtype: torch.dtype = torch.float32) -> FingerprintNet:
    """The same function for serving: each batch norm folded into the convolution or linear layer
    before it, and the tensors in channels-last order, where oneDNN's convolutions need no reorder
    (features at batch 1 on one core 8.4 -> 7.4 ms; outputs within 3e-6). `model` is untouched.

    `trunk_dtype` torch.bfloat16: the convolutions compute in bfloat16 (float32 accumulation), the head
    in float32. Every convolution already runs at the core's float32 peak, so halving the bits is what is
    left: features 8.4 -> 5.1 ms on one core with AVX512-BF16, within 0.5 % of float32 (model card,
    "Served in bfloat16")."""
    folded = copy.deepcopy(model).eval()

    def fold(seq: nn.Sequential) -> None:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()

    fold(folded.stem)
    fold(folded.reduce)
    for block in folded.trunk:
        assert isinstance(block, _Block) and isinstance(block.bn1, nn.BatchNorm2d) and isinstance(block.bn2, nn.BatchNorm2d)
        block.conv1, block.bn1 = fuse_conv_bn_eval(block.conv1, block.bn1), nn.Identity()
        block.conv2, block.bn2 = fuse_conv_bn_eval(block.conv2, block.bn2), nn.Identity()
        if isinstance(block.skip, nn.Sequential):
            fold(block.skip)
    linear, bn1d = folded.head[1], folded.head[2]
    assert isinstance(linear, nn.Linear) and isinstance(bn1d, nn.BatchNorm1d)
    folded.head[1], folded.head[2] = fuse_linear_bn_eval(linear, bn1d), nn.Identity()
    for part in (folded.stem, folded.trunk, folded.reduce):
        part.to(trunk_dtype)
    folded.trunk_dtype = trunk_dtype
    for conv in folded.modules():
        if isinstance(conv, nn.Conv2d):
            conv.weight = nn.Parameter(conv.weight.detach().contiguous(memory_format=torch.channels_last), requires_grad=False)
    return folded
