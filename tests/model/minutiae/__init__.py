import numpy as np
import torch

from fingerprint.model.minutiae import MinutiaeTemplate, extract_minutiae
from fingerprint.model.preprocess import prepare


def found_minutiae(img: np.ndarray) -> MinutiaeTemplate:
    """The hand-made minutiae of a print, found as enrolment finds them."""
    with torch.inference_mode():
        enhanced = prepare(torch.from_numpy(img.astype(np.float32))[None, None]).tensor[0, 1]
    return extract_minutiae(enhanced)
