"""Shipped weights: a state dict plus a JSON card of metadata, checked by sha256 before loading."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import torch

from fingerprint.model.dense import GridMatcher
from fingerprint.model.leader import LeaderForward, LeaderNet
from fingerprint.model.minutiae import MinutiaeMatcher
from fingerprint.model.network import FingerprintNet
from fingerprint.model.student import StudentNet

DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "fingerprint-net.pt"


class WeightsError(RuntimeError):
    """The weights are missing, corrupt or do not match their recorded hash."""


@dataclass(frozen=True)
class ModelMeta:
    name: str
    version: str
    sha256: str
    embedding_dim: int
    width: int
    threshold_fmr_1e2: float  # score threshold for a 1 % false match rate
    threshold_fmr_1e3: float  # score threshold for a 0.1 % false match rate
    trained_on: list[str]
    notes: str = ""
    enhanced_input: bool = False  # reads the Gabor-enhanced channel (cards before it read the raw one)
    window: int = 320  # crop at 500 dpi (preprocess.prepare); the network input is half of it
    probe_shift_radius: int = 0  # probes are compared in (2r+1)^2 shifted views; thresholds assume it
    # verify and identify's shortlist compare descriptor grids (model/dense.py); thresholds are on that score
    dense_matching: bool = False
    dense_max_shift: int = 3  # cells searched in each direction when grids are compared
    dense_rotations: tuple[float, ...] = ()  # probe grid rotations (degrees) tried beside the unturned grid
    dense_fusion_weight: float = 0.0  # share of the search vector's best-view cosine in a comparison
    # versions whose stored templates this model reads as its own: the same network and template
    # layout, only scoring parameters changed, so upgrading does not ask for re-enrolment
    reads_templates_of: tuple[str, ...] = ()
    # weight of the minutiae score (model/minutiae) beside the grid's in a comparison; 0: not compared
    minutiae_weight: float = 0.0
    # crop at 500 dpi, around the network's, whose minutiae a print gets (preprocess.prepare's `outer`);
    # 0: the network's window (cards before 3.5.0)
    minutiae_window: int = 0
    # degrees each probe minutia's direction is also turned by when minutiae are compared (minutiae/match.py);
    # cards before 3.6 compare the directions as found
    minutiae_direction_offsets: tuple[float, ...] = ()
    # weight of LEADER's minutiae score (model/leader.py) beside the grid's and the hand-made minutiae's; 0: the
    # network is not run. Its weights are `leader.pt` beside the card, checked against `leader_sha256`
    leader_weight: float = 0.0
    leader_sha256: str = ""
    # a network distilled from LEADER (model/student.py) that probes (identify, verify) may find LEADER's
    # minutiae with (FAST_PROBES): `probe-minutiae.pt` beside the card, checked against this; "": none
    probe_minutiae_sha256: str = ""
    # how many times as often a probe of another finger reaches the gallery's impostor sample's tail as the
    # sample's own scores do (gallery/impostors.py); 1: the sample's tail as it is (cards before 5.0.0)
    impostor_tail_factor: float = 1.0
    # the floor under the gallery's estimate (gallery/impostors.py): the size of a synthetic gallery's impostor
    # sample and its highest scores (lab/evaluation/synthetic_impostors.py); 0 and (): no floor (cards before 5.1)
    synthetic_impostor_scores: int = 0
    synthetic_impostor_top: tuple[float, ...] = ()

    def minutiae_crop(self) -> int:
        """The window minutiae are found in."""
        return self.minutiae_window or self.window

    def readable_versions(self) -> tuple[str, ...]:
        """The model versions of the stored templates the gallery loads for this model."""
        return (self.version, *self.reads_templates_of)

    def grid_shape(self) -> tuple[int, int, int] | None:
        """(C, H, W) of the descriptor grid a print gets: the network's 64 channels, one cell per
        32 px of the window at 500 dpi."""
        if not self.dense_matching:
            return None
        return (64, self.window // 32, self.window // 32)

    def minutiae_matcher(self) -> MinutiaeMatcher:
        """How two prints' minutiae are compared."""
        return MinutiaeMatcher(direction_offsets=self.minutiae_direction_offsets)

    def grid_matcher(self) -> GridMatcher | None:
        """How two prints are compared, or None when the model compares search vectors only."""
        if not self.dense_matching:
            return None
        return GridMatcher(self.dense_max_shift, self.dense_rotations, self.dense_fusion_weight)


def meta_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_weights(model: FingerprintNet, path: Path, meta: ModelMeta) -> ModelMeta:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(state, buf)
    path.write_bytes(buf.getvalue())
    final = ModelMeta(**{**asdict(meta), "sha256": sha256_file(path)})
    meta_path(path).write_text(json.dumps(asdict(final), indent=2) + "\n")
    if final.leader_weight > 0 and not leader_path(path).exists():  # the card names LEADER's weights beside it
        shutil.copy(leader_path(DEFAULT_WEIGHTS), leader_path(path))
    if final.probe_minutiae_sha256 and not probe_minutiae_path(path).exists():
        shutil.copy(probe_minutiae_path(DEFAULT_WEIGHTS), probe_minutiae_path(path))
    return final


def read_meta(path: Path) -> ModelMeta:
    try:
        raw = json.loads(meta_path(path).read_text())
        raw["dense_rotations"] = tuple(raw.get("dense_rotations", ()))
        raw["reads_templates_of"] = tuple(raw.get("reads_templates_of", ()))
        raw["minutiae_direction_offsets"] = tuple(raw.get("minutiae_direction_offsets", ()))
        raw["synthetic_impostor_top"] = tuple(raw.get("synthetic_impostor_top", ()))
        # written by cards up to 4.0.0; per-pixel contrast lost its experiment and was removed
        if raw.pop("pixel_statistics", False) is not False:
            raise ValueError("pixel_statistics (per-pixel contrast) is no longer supported")
        meta = ModelMeta(**raw)
    except FileNotFoundError as exc:
        raise WeightsError(f"model card {meta_path(path)} is missing") from exc
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"model card {meta_path(path)} is invalid: {exc}") from exc
    # the network reduces its input 16x and the input is half the window: other sizes would give
    # grids of a size the card does not promise
    if not (isinstance(meta.window, int) and 128 <= meta.window <= 640 and meta.window % 32 == 0):
        raise WeightsError(f"model card {meta_path(path)} is invalid: window {meta.window!r} "
                           "is not a multiple of 32 in 128-640")
    if not all(isinstance(d, (int, float)) and not isinstance(d, bool) and 0 < abs(d) <= 45
               for d in meta.minutiae_direction_offsets):
        raise WeightsError(f"model card {meta_path(path)} is invalid: minutiae_direction_offsets "
                           f"{meta.minutiae_direction_offsets!r} are not degrees in [-45, 45] other than 0")
    top = meta.synthetic_impostor_top
    if not (all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in top) and list(top) == sorted(top, reverse=True)
            and isinstance(meta.synthetic_impostor_scores, int) and meta.synthetic_impostor_scores >= len(top)):
        raise WeightsError(f"model card {meta_path(path)} is invalid: synthetic_impostor_top is not scores in [0, 1], "
                           "highest first, at most synthetic_impostor_scores of them")
    outer = meta.minutiae_crop()
    # a template's foreground mask has one cell per 16 px, and the crop must sit centred on the network's
    if not (isinstance(outer, int) and meta.window <= outer <= 640 and outer % 16 == 0 and (outer - meta.window) % 4 == 0):
        raise WeightsError(f"model card {meta_path(path)} is invalid: minutiae_window {outer!r} is not a "
                           f"multiple of 16 from the window ({meta.window}) to 640")
    return meta


def leader_path(weights: Path) -> Path:
    return weights.parent / "leader.pt"


def load_leader(weights: Path, meta: ModelMeta) -> LeaderForward | None:
    """The card's LEADER network, checked by sha256; None for cards that do not fuse its minutiae."""
    if meta.leader_weight <= 0:
        return None
    net = _load_verified(LeaderNet(), leader_path(weights), meta.leader_sha256, "LEADER weights")
    # channels-last: oneDNN's depthwise and 1x1 convolutions run ~1.6x faster on two threads (outputs
    # within 1e-6 of the default layout)
    net.eval()
    cast(Any, net).to(memory_format=torch.channels_last)  # in place; the keyword is missing from torch's stubs
    return net


def probe_minutiae_path(weights: Path) -> Path:
    return weights.parent / "probe-minutiae.pt"


def load_probe_minutiae(weights: Path, meta: ModelMeta) -> StudentNet | None:
    """The card's network distilled from LEADER for a probe's minutiae, checked by sha256; None if it has none."""
    if meta.leader_weight <= 0 or not meta.probe_minutiae_sha256:
        return None
    return _load_verified(StudentNet(), probe_minutiae_path(weights), meta.probe_minutiae_sha256, "probe minutiae weights")


def load_weights(path: Path) -> tuple[FingerprintNet, ModelMeta]:
    """Load and verify; raises WeightsError on any mismatch so the service can stay unready."""
    meta = read_meta(path)
    model = FingerprintNet(embedding_dim=meta.embedding_dim, width=meta.width, enhanced_input=meta.enhanced_input)
    return _load_verified(model, path, meta.sha256, "weights"), meta


M = TypeVar("M", bound=torch.nn.Module)


def _load_verified(module: M, path: Path, sha256: str, what: str) -> M:
    """`module` with the state dict at `path`, once its sha256 is the card's; WeightsError otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{what} {path} cannot be read: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise WeightsError(f"{what} {path} sha256 {digest} does not match the recorded {sha256}")
    try:
        module.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
    except Exception as exc:  # torch raises many types for a bad archive
        raise WeightsError(f"{what} {path} cannot be loaded: {exc}") from exc
    return module.eval()
