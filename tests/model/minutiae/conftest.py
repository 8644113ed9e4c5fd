import numpy as np
import pytest

from fingerprint.model.minutiae import MinutiaeTemplate
from tests.model.minutiae import found_minutiae


@pytest.fixture(scope="session")
def minutiae(prints: list[list[np.ndarray]]) -> list[list[MinutiaeTemplate]]:
    """The hand-made minutiae of the session's synthetic prints."""
    return [[found_minutiae(img) for img in finger] for finger in prints]
