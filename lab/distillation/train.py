"""Train the student on LEADER's labels (`lab.distillation.teacher`), resumable from OUT/student.pt; then
`--export` writes its weights where a card names them (fingerprint/model/weights/probe-minutiae.pt).

    python -m lab.distillation.train --labels runs/distill/teacher-soft --out runs/distill-v4 --steps 3000
    python -m lab.distillation.train --out runs/distill-v4 --export fingerprint/model/weights/probe-minutiae.pt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from fingerprint.model.student import StudentNet
from lab.distillation.student import loss, targets

CROP = 192


def _turned(image: np.ndarray, minutiae: np.ndarray, k: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """The print (and any maps stacked behind it: (C, H, W)) and its minutiae flipped left-right (if `flip`)
    then turned k quarter turns (np.rot90)."""
    m = minutiae.copy()
    if flip:
        image = image[:, :, ::-1]
        m[:, 0] = image.shape[2] - 1 - m[:, 0]
        m[:, 2] = math.pi - m[:, 2]
    for _ in range(k):
        w = image.shape[2]
        image = np.rot90(image, axes=(1, 2))
        m[:, 0], m[:, 1] = m[:, 1].copy(), w - 1 - m[:, 0]
        m[:, 2] = m[:, 2] - math.pi / 2
    m[:, 2] = np.remainder(m[:, 2], 2 * math.pi)
    return np.ascontiguousarray(image), m


Labelled = tuple[np.ndarray, np.ndarray]  # (2, H, W) image and LEADER's smoothed probability; (n, 4) minutiae


SCALES = (0.8, 1.45)  # ridge periods differ across sensors and people (FVC2000 DB3's ~12 px, the Neurotech sets' ~9)


def sample(prints: list[Labelled], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    maps, minutiae = prints[rng.integers(len(prints))]
    maps, minutiae = _turned(maps, minutiae, int(rng.integers(4)), bool(rng.integers(2)))
    scale = float(np.exp(rng.uniform(*np.log(SCALES)))) if rng.random() < 0.7 else 1.0
    side = round(CROP / scale)  # this much of the print becomes the crop
    _, h, w = maps.shape
    canvas = np.zeros((2, max(h, side), max(w, side)), np.float32)
    canvas[0] = maps[0, 0, 0]
    canvas[:, :h, :w] = maps
    top, left = rng.integers(canvas.shape[1] - side + 1), rng.integers(canvas.shape[2] - side + 1)
    crop = canvas[:, top : top + side, left : left + side]
    m = minutiae - np.array([left, top, 0, 0], np.float32)
    if side != CROP:  # pixel centres map as (x + 0.5) * zoom - 0.5, as grid_mode zooms them
        zoom = CROP / side
        crop = ndimage.zoom(crop, (1, zoom, zoom), order=1, grid_mode=True, mode="nearest")
        m[:, :2] = (m[:, :2] + 0.5) * zoom - 0.5
    return sensor_like(crop[0], rng), targets(m, crop[1])


def sensor_like(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop as another sensor or skin might render it: the student trains on two optical sensors and
    synthetic prints, and must find the same minutiae on capacitive, thermal-swipe and dry or wet prints.
    Brightness, contrast and gamma; blur; thicker or thinner ridges; faint (dry) patches; noise."""
    x = np.clip((crop - crop.mean()) * rng.uniform(0.5, 1.5) + crop.mean() + rng.uniform(-40, 40), 0, 255) / 255.0
    x = x ** rng.uniform(0.5, 2.0)
    if rng.random() < 0.4:
        x = ndimage.gaussian_filter(x, rng.uniform(0.5, 1.3))
    if rng.random() < 0.3:  # ridges are dark: a grey minimum thickens them (wet), a maximum thins them (dry)
        x = (ndimage.grey_erosion if rng.random() < 0.5 else ndimage.grey_dilation)(x, size=(2, 2))
    if rng.random() < 0.4:  # patches where the ridges fade into the background, as dry skin gives
        field = ndimage.gaussian_filter(rng.random((CROP // 16, CROP // 16)), 1.0)
        fade = np.clip(ndimage.zoom(field, 16, order=1) * 3 - 1, 0.15, 1.0)[: x.shape[0], : x.shape[1]]
        x = 1 - (1 - x) * fade
    x = x + rng.normal(0, rng.uniform(0, 0.05), x.shape)
    return (np.clip(x, 0, 1) * 255).astype(np.float32)


def load_labels(folder: Path) -> list[Labelled]:
    out = []
    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        out.append((np.stack([data["image"], data["smooth"]]).astype(np.float32), data["minutiae"]))
    return out


def export(checkpoint: Path, target: Path) -> None:
    """The network's weights alone (no optimiser state), as `fingerprint.model.weights` loads them."""
    import hashlib
    import io

    state = torch.load(checkpoint)
    StudentNet().load_state_dict(state["net"])  # raises unless the runtime's network takes these weights
    buf = io.BytesIO()
    torch.save({k: v.detach().clone().contiguous() for k, v in state["net"].items()}, buf)
    target.write_bytes(buf.getvalue())
    print(f"wrote {target} (step {state['step']}): sha256 {hashlib.sha256(buf.getvalue()).hexdigest()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=Path, default=Path("runs/distill/teacher-soft"))
    ap.add_argument("--out", type=Path, default=Path("runs/distill"))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--export", type=Path, default=None, help="write the trained network's weights here and stop")
    args = ap.parse_args()
    if args.export:
        export(args.out / "student.pt", args.export)
        return
    from fingerprint.model.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    prints = load_labels(args.labels)
    net = StudentNet(args.width)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    step, ckpt = 0, args.out / "student.pt"
    if ckpt.exists():
        state = torch.load(ckpt)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
    rng = np.random.default_rng(args.seed + step)
    started, seen = time.perf_counter(), step
    net.train()
    while step < args.steps:
        batch = [sample(prints, rng) for _ in range(args.batch)]
        images = torch.from_numpy(np.stack([b[0] for b in batch]))[:, None]
        target = torch.from_numpy(np.stack([b[1] for b in batch]))
        for group in opt.param_groups:  # warm-up, then cosine
            group["lr"] = args.lr * min(1.0, (step + 1) / 100) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        parts = loss(net(images), target)
        opt.zero_grad()
        parts["total"].backward()
        opt.step()
        step += 1
        if step % 50 == 0 or step == args.steps:
            rate = (time.perf_counter() - started) / (step - seen)
            print(f"step {step}: " + " ".join(f"{k} {v.item():.4f}" for k, v in parts.items()) + f" ({rate:.2f} s/step)",
                  flush=True)
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "width": args.width}, ckpt)


if __name__ == "__main__":
    main()
