"""Convert pyfing's LEADER weights (Keras 3 .weights.h5) to the torch state dict the runtime loads.

Run once per pyfing release, in an environment with pyfing and keras (`pip install .[pretrained]`):
    KERAS_BACKEND=torch python -m lab.pretrained.leader_weights fingerprint/model/weights/leader.pt
It builds pyfing's Keras model (so the layer names are pyfing's own), copies every layer's weights into
`fingerprint.model.leader.LeaderNet`, and checks both give the same maps on a print-like image.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

from fingerprint.model.leader import LeaderNet

os.environ.setdefault("KERAS_BACKEND", "torch")


def _target(name: str) -> str:
    """A pyfing layer name -> the LeaderNet module path holding its weights."""
    for prefix, path in (("stem0_", "stem0."), ("stem1_", "stem1.")):
        if name.startswith(prefix):
            return path + name[len(prefix):]
    if name.startswith("attention_conv_d"):
        return f"attention.{(1, 3, 6).index(int(name[len('attention_conv_d'):]))}"
    if name == "attention_s":
        return "attention_s"
    if name.startswith("head_conv_"):
        return name[len("head_conv_"):]
    if name.startswith("head_"):
        k, rest = name[len("head_"):].split("_", 1)
        return f"heads.{k}.{rest.replace('ibc_', 'ibc.')}"
    block, i, rest = name.split("_", 2)  # enc0_2_conv, dec1_3_conv_exp ...
    return f"{block}.{i}.{rest}"


def keras_model():  # type: ignore[no-untyped-def]
    from pyfing.minutiae_end_to_end import Leader

    return Leader().model


def convert(model) -> LeaderNet:  # type: ignore[no-untyped-def]
    net = LeaderNet().eval()
    params = dict(net.named_parameters())
    done = set()
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights or layer.name == "nms_Gaussian_blur":
            continue
        path = _target(layer.name)
        kind = type(layer).__name__
        if kind == "SeparableConv2D":
            dw, pw, bias = weights
            pairs = {f"{path[:-len('conv')]}depthwise.weight": dw.transpose(2, 3, 0, 1),
                     f"{path[:-len('conv')]}pointwise.weight": pw.transpose(3, 2, 0, 1),
                     f"{path[:-len('conv')]}pointwise.bias": bias}
        elif kind == "DepthwiseConv2D":
            pairs = {f"{path}.weight": weights[0].transpose(2, 3, 0, 1)}
        elif kind == "Conv2D":
            pairs = {f"{path}.weight": weights[0].transpose(3, 2, 0, 1), f"{path}.bias": weights[1]}
        elif kind == "LayerNormalization":
            pairs = {f"{path}.weight": weights[0], f"{path}.bias": weights[1]}
        else:
            raise ValueError(f"unexpected layer {layer.name} ({kind})")
        for key, value in pairs.items():
            if params[key].shape != value.shape:
                raise ValueError(f"{layer.name} -> {key}: {value.shape} vs {tuple(params[key].shape)}")
            params[key].data.copy_(torch.from_numpy(np.ascontiguousarray(value)))
            done.add(key)
    missing = set(params) - done
    if missing:
        raise ValueError(f"weights not converted: {sorted(missing)}")
    blur = model.get_layer("nms_Gaussian_blur").get_weights()[0][:, :, 0, 0]
    if not np.allclose(blur, net.blur[0, 0].numpy(), atol=1e-6):
        raise ValueError("pyfing's NMS blur differs from LeaderNet's")
    return net


def max_difference(model, net: LeaderNet, image: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """Largest difference of the probability, type and suppressed maps (direction is an angle) of the two."""
    with torch.no_grad():
        ours = net(torch.from_numpy(image.astype(np.float32))[None, None])[0].numpy()
        theirs = np.asarray(model(image[None, ..., None], training=False).cpu().numpy())[0].transpose(2, 0, 1)
    return float(np.abs(ours[[0, 2, 3]] - theirs[[0, 2, 3]]).max())


def main() -> None:
    out = Path(sys.argv[1])
    model = keras_model()
    net = convert(model)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:224]
    image = (128 + 100 * np.sin((xx * np.cos(0.5) + yy * np.sin(0.5)) / 1.6 + rng.normal(0, 0.3, xx.shape))).astype(np.uint8)
    diff = max_difference(model, net, image)
    if diff > 1e-3:
        raise SystemExit(f"the port differs from pyfing by {diff}")
    torch.save(net.state_dict(), out)
    print(f"wrote {out}; largest map difference against pyfing {diff:.2e}")


if __name__ == "__main__":
    main()
