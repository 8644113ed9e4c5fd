"""Minutiae (ridge endings and bifurcations) and their comparison by Minutia Cylinder-Code.

A second opinion beside the network's descriptor grid: minutiae are where ridges end or split, a
property of the finger that every sensor records alike, while the grid's learned descriptors agree
less on sensors the network never saw (the model card's FVC2002 diagnosis). Stages: `skeleton`
(thinning, crossing numbers), `extract` (minutiae from the enhanced ridge map the network already
reads), `cylinders` (each minutia's neighbourhood as a rotation-invariant code), `match` (cylinder
similarities consolidated by local similarity assignment with relaxation).
"""

from fingerprint.model.minutiae.extract import extract_minutiae
from fingerprint.model.minutiae.match import MinutiaeMatcher, Probe
from fingerprint.model.minutiae.template import MinutiaeFormatError, MinutiaeTemplate

__all__ = ["MinutiaeFormatError", "MinutiaeMatcher", "MinutiaeTemplate", "Probe", "extract_minutiae"]
