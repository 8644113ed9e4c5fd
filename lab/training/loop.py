"""Metric learning with a CosFace margin over synthetic and real fingers; resumable, seeded.

Batches mix synthetic impressions rendered on the fly from the master bank with augmented real
impressions of the training fingers. A held-out split of the real training fingers (never the FVC
validation sets) picks the checkpoint and calibrates the decision thresholds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fingerprint.calibration.metrics import eer, threshold_at_fmr
from fingerprint.model.comparator import Comparator
from fingerprint.model.dense import MAX_SHIFT, GridMatcher, dense_grid, rotation_scores, to_int8
from fingerprint.model.network import FingerprintNet, bfloat16_is_native
from fingerprint.model.preprocess import prepare
from fingerprint.model.weights import ModelMeta, save_weights
from lab.synth.bank import build_bank
from lab.synth.impressions import render_impressions
from lab.training.config import TrainConfig, served_matcher
from lab.training.pair_scores import dense_pair_scores, pair_scores
from lab.training.real_data import RealSet, augment_real, load_real, split_fingers

Log = Callable[[str], None]


def embed_with_grids(model: FingerprintNet, canvases: torch.Tensor, radius: int, window: int,
                     batch: int = 64, outer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, K, D) views and (N, C, H, W) int8 descriptor grids from one forward pass, as the service
    computes and stores them (`outer`: the card's minutiae window, which the enhanced channel is
    computed over)."""
    model.eval()
    views, cells = [], []
    with torch.inference_mode():
        for i in range(0, len(canvases), batch):
            images = prepare(canvases[i : i + batch], window, outer).tensor
            features = model.features(images)
            views.append(model.shifted_views_of(features, radius))
            cells.append(to_int8(dense_grid(features, images)[0]))
    return torch.cat(views), torch.cat(cells)


class _Trainer:
    def __init__(self, cfg: TrainConfig, real: RealSet, held: RealSet, masters: torch.Tensor, out: Path, log: Log):
        self.cfg, self.real, self.held, self.masters, self.out, self.log = cfg, real, held, masters, out, log
        self.n_syn = len(masters)
        n_classes = self.n_syn + len(real.fingers)
        torch.manual_seed(cfg.seed)
        self.model = FingerprintNet(embedding_dim=cfg.embedding_dim, width=cfg.width, enhanced_input=cfg.enhanced_input)
        self.classes = torch.nn.Parameter(torch.randn(n_classes, cfg.embedding_dim) * 0.01)
        params = [*list(self.model.parameters()), self.classes]
        self.opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.best_eer = math.inf
        self.history: list[dict[str, float]] = []
        self.by_finger = [torch.nonzero(real.labels == f).flatten() for f in range(len(real.fingers))]
        self.bfloat16 = cfg.precision == "bfloat16" and bfloat16_is_native()

    def _prepare(self, canvases: torch.Tensor) -> torch.Tensor:
        return prepare(canvases, self.cfg.window).tensor

    def _embed(self, canvases: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`embed_with_grids` of canvases prepared as this recipe trains on them."""
        return embed_with_grids(self.model, canvases, 0, self.cfg.window)

    def _real_centroids(self) -> torch.Tensor:
        emb = self._embed(self.real.canvases)[0][:, 0]
        sums = torch.zeros(len(self.real.fingers), emb.shape[1]).index_add_(0, self.real.labels, emb)
        return F.normalize(sums, dim=1)

    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        if step < cfg.warmup_iterations:
            return cfg.learning_rate * (step + 1) / cfg.warmup_iterations
        t = (step - cfg.warmup_iterations) / max(1, cfg.iterations - cfg.warmup_iterations)
        return cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        paired = cfg.dense_weight > 0
        n_real = round(cfg.batch_size * cfg.real_fraction) // 2 * 2
        n_syn = cfg.batch_size - n_real
        if paired:  # rows 2k and 2k+1 are two impressions of one finger
            syn_idx = torch.randint(0, self.n_syn, (n_syn // 2,), generator=self.gen).repeat_interleave(2)
            real_idx = self.real_pairs(n_real // 2)
        else:
            syn_idx = torch.randint(0, self.n_syn, (n_syn,), generator=self.gen)
            real_idx = torch.randint(0, len(self.real.labels), (n_real,), generator=self.gen)
        syn = render_impressions(self.masters[syn_idx].float() / 127.0, self.gen)
        images = self._prepare(torch.cat([syn, augment_real(self.real.canvases[real_idx], self.real.backgrounds[real_idx],
                                                            self.gen)]))
        labels = torch.cat([syn_idx, self.n_syn + self.real.labels[real_idx]])
        return images, labels

    def real_pairs(self, n: int) -> torch.Tensor:
        """Indices of n pairs of distinct impressions, each pair of one real training finger."""
        first = torch.randint(0, len(self.real.labels), (n,), generator=self.gen)
        out = []
        for i in first.tolist():
            mates = self.by_finger[int(self.real.labels[i])]
            mates = mates[mates != i]
            j = int(mates[torch.randint(0, len(mates), (1,), generator=self.gen)]) if len(mates) else i
            out += [i, j]
        return torch.tensor(out)

    def dense_loss(self, images: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Each impression's mate must outscore every other impression of the batch under the
        shift-searched grid score the service verifies with (an InfoNCE with an additive margin)."""
        cells, mask = dense_grid(features, images)
        scores = rotation_scores(cells, mask, cells, mask, MAX_SHIFT, self.cfg.dense_rotations)
        n = len(scores)
        mate = torch.arange(n) ^ 1
        logits = scores - self.cfg.dense_margin * F.one_hot(mate, n).float()
        logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), -math.inf)
        return F.cross_entropy(self.cfg.dense_scale * logits, mate)

    def train_step(self) -> tuple[float, float]:
        self.model.train()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        images, labels = self.batch()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            features = self.model.features(images)  # float32 out: the dense loss scores in float32
            emb = self.model.embed_features(features).float()
        cos = emb @ F.normalize(self.classes, dim=1).T
        onehot = F.one_hot(labels, cos.shape[1]).float()
        logits = self.cfg.scale * (cos - self.cfg.margin * onehot)
        loss = F.cross_entropy(logits, labels)
        if self.cfg.dense_weight > 0:
            loss = loss + self.cfg.dense_weight * self.dense_loss(images, features)
        self.opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        self.opt.step()
        self.step += 1
        acc = (cos.argmax(1) == labels).float().mean()
        return float(loss.detach()), float(acc)

    def validate(self) -> tuple[float, float]:
        """Held-out EER of the embedding and of dense matching; the run selects on the score it trains."""
        views, grids = self._embed(self.held.canvases)
        emb_eer = eer(*pair_scores(views, self.held.labels))
        comparator = Comparator(GridMatcher(self.cfg.dense_max_shift, self.cfg.dense_rotations))
        dense_eer = eer(*dense_pair_scores(views, grids, self.held.labels, comparator))
        return emb_eer, dense_eer

    def state(self) -> dict[str, object]:
        return {
            "model": self.model.state_dict(),
            "classes": self.classes.detach(),
            "opt": self.opt.state_dict(),
            "gen": self.gen.get_state(),
            "step": self.step,
            "best_eer": self.best_eer,
            "history": self.history,
        }

    def restore(self, ckpt: dict[str, object]) -> None:
        self.model.load_state_dict(ckpt["model"])  # type: ignore[arg-type]
        with torch.no_grad():
            self.classes.copy_(ckpt["classes"])  # type: ignore[arg-type]
        self.opt.load_state_dict(ckpt["opt"])  # type: ignore[arg-type]
        self.gen.set_state(ckpt["gen"])  # type: ignore[arg-type]
        self.step = int(ckpt["step"])  # type: ignore[call-overload]
        self.best_eer = float(ckpt["best_eer"])  # type: ignore[arg-type]
        self.history = list(ckpt["history"])  # type: ignore[call-overload]

    def _synthetic_centroids(self, impressions: int = 2) -> torch.Tensor:
        """Each synthetic finger's mean embedding over a few rendered impressions (seeded), unit length."""
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        out = []
        for start in range(0, self.n_syn, 64):
            idx = torch.arange(start, min(start + 64, self.n_syn)).repeat_interleave(impressions)
            canvases = render_impressions(self.masters[idx].float() / 127.0, gen)
            views, _ = self._embed(canvases)
            out.append(F.normalize(views[:, 0].reshape(-1, impressions, views.shape[-1]).sum(1), dim=1))
        return torch.cat(out)

    def initialise_from(self, path: Path) -> None:
        """Network and class weights of a previous run; when the real fingers were relabelled
        (merge_same_people) the synthetic classes carry over and each real finger starts at its prints'
        mean embedding, at the synthetic classes' mean norm. `path` may also be a bare state dict (the
        shipped weights, which keep no class weights): then every class starts at its finger's mean
        embedding, unit length."""
        init = torch.load(path, weights_only=False)
        bare = "model" not in init
        self.model.load_state_dict(init if bare else init["model"])
        with torch.no_grad():
            if bare:
                self.classes.copy_(torch.cat([self._synthetic_centroids(), self._real_centroids()]))
            elif init["classes"].shape == self.classes.shape:
                self.classes.copy_(init["classes"])
            else:
                self.classes[: self.n_syn] = init["classes"][: self.n_syn]
                self.classes[self.n_syn :] = self._real_centroids() * init["classes"][: self.n_syn].norm(dim=1).mean()
        origin = "bare weights" if bare else f"iteration {init['step']}"
        self.log(f"initialised from {path} ({origin})")

    def run(self) -> None:
        cfg = self.cfg
        ckpt_path = self.out / "checkpoint.pt"
        if not ckpt_path.exists() and cfg.init_from:
            self.initialise_from(Path(cfg.init_from))
        if ckpt_path.exists():
            self.restore(torch.load(ckpt_path, weights_only=False))
            self.log(f"resumed at iteration {self.step}")
        if cfg.precision == "bfloat16":
            self.log("training in bfloat16 autocast" if self.bfloat16 else
                     "training in float32: this CPU has no native bfloat16 (the recipe asks for bfloat16)")
        t0, losses, accs = time.time(), [], []
        start_step = self.step
        while self.step < cfg.iterations:
            loss, acc = self.train_step()
            losses.append(loss)
            accs.append(acc)
            if self.step % 20 == 0:
                rate = (time.time() - t0) / (self.step - start_step)
                eta = rate * (cfg.iterations - self.step) / 60
                self.log(
                    f"iter {self.step}/{cfg.iterations} loss {np.mean(losses):.3f} acc {np.mean(accs):.3f} "
                    f"{rate:.2f}s/it eta {eta:.0f}min"
                )
                losses, accs = [], []
            if self.step % cfg.validate_every == 0 or self.step == cfg.iterations:
                emb_eer, dense_eer = self.validate()
                val_eer = dense_eer if cfg.dense_weight > 0 else emb_eer
                self.history.append({"step": self.step, "holdout_eer": val_eer, "holdout_embedding_eer": emb_eer,
                                     "holdout_dense_eer": dense_eer})
                self.log(
                    f"validate iter {self.step}: held-out real EER embedding {emb_eer * 100:.2f}% "
                    f"dense {dense_eer * 100:.2f}%"
                )
                if val_eer <= self.best_eer:
                    self.best_eer = val_eer
                    torch.save({"model": self.model.state_dict(), "step": self.step}, self.out / "best.pt")
                tmp = ckpt_path.with_suffix(".tmp")
                torch.save(self.state(), tmp)
                tmp.replace(ckpt_path)


def train(cfg: TrainConfig, data_root: Path, out: Path, weights_out: Path, cache: Path, log: Log) -> ModelMeta:
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(str(asdict(cfg)))
    train_keys, held_keys = split_fingers(data_root, cfg)
    log(f"real fingers: {len(train_keys)} train, {len(held_keys)} held out")
    real = load_real(data_root, cfg.real_sets, train_keys, cfg.merge_same_people)
    held = load_real(data_root, cfg.real_sets, held_keys, cfg.merge_same_people)
    masters = build_bank(cache, cfg.synthetic_fingers, progress=lambda i, n: log(f"masters {i}/{n}") if i % 500 == 0 else None)
    trainer = _Trainer(cfg, real, held, masters, out, log)
    trainer.run()
    best = torch.load(out / "best.pt", weights_only=False)
    trainer.model.load_state_dict(best["model"])
    # thresholds come from the scores the service will compute: on the grids, or with the probe's shifted views
    dense_matching = cfg.dense_weight > 0
    matcher = served_matcher(cfg)
    comparator = Comparator(matcher)
    views, grids = embed_with_grids(trainer.model, held.canvases, cfg.probe_shift_radius, cfg.window)
    if dense_matching:
        genuine, impostor = dense_pair_scores(views, grids, held.labels, comparator, held.sensors)
    else:
        genuine, impostor = pair_scores(views, held.labels, held.sensors)
    val_eer = eer(genuine, impostor)
    meta = ModelMeta(
        name="fingerprint-net",
        version=f"{cfg.version}+s{cfg.seed}i{best['step']}",
        sha256="",
        embedding_dim=cfg.embedding_dim,
        width=cfg.width,
        enhanced_input=cfg.enhanced_input,
        window=cfg.window,
        probe_shift_radius=cfg.probe_shift_radius,
        dense_matching=dense_matching,
        dense_max_shift=matcher.max_shift,
        dense_rotations=matcher.rotations,
        dense_fusion_weight=matcher.fusion_weight if dense_matching else 0.0,
        reads_templates_of=cfg.reads_templates_of,
        threshold_fmr_1e2=threshold_at_fmr(impostor, 0.01),
        threshold_fmr_1e3=threshold_at_fmr(impostor, 0.001),
        trained_on=[*cfg.real_sets, f"synthetic x{cfg.synthetic_fingers}"],
        notes=f"held-out real EER {val_eer * 100:.2f}% (impostors of one sensor) at iteration {best['step']}"
              + ("; trained in bfloat16 autocast" if trainer.bfloat16 else ""),
    )
    return save_weights(trainer.model, weights_out, meta)
