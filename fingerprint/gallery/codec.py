"""How a template is kept in a store row, sealed with AES-GCM when a template key is configured.

Three layouts, told apart by their first bytes:
- a bare search vector: float16 little-endian (512 bytes at d=256), written before dense matching;
- `FPT2`, a header (dim, C, H, W), the float16 search vector, then the int8 descriptor grid
  (6.4 KB for 64x10x10). No bare vector can start with `FPT2`: as float16 those bytes are about 34,
  and a unit vector's components are at most 1;
- `FPT3`, the same followed by the print's minutiae (model/minutiae/template.py, up to 563 bytes).
"""

from __future__ import annotations

import struct

import numpy as np
import structlog

from fingerprint.model.minutiae.template import MinutiaeTemplate
from fingerprint.security.template_cipher import MAGIC, CipherError, TemplateCipher

_GRID_MAGIC = b"FPT2"
_MINUTIAE_MAGIC = b"FPT3"
_HEADER = struct.Struct("<4sHBBB")
log = structlog.get_logger("fingerprint.gallery.codec")

Decoded = tuple[np.ndarray, np.ndarray | None, MinutiaeTemplate | None]


class UnsealedTemplate(CipherError):
    """A plain row in a gallery configured to seal: planted or written before encryption was turned on."""


class EmbeddingCodec:
    def __init__(self, cipher: TemplateCipher | None = None) -> None:
        self.cipher = cipher
        self.refused = 0  # rows that could not be opened since start (logged one by one)

    def open_row(self, template_id: str, blob: bytes) -> Decoded | None:
        """A stored row's template, or None when it cannot be trusted: never loaded, logged, counted."""
        try:
            return self.decode(template_id, blob)
        except (CipherError, ValueError, struct.error) as exc:
            self.refused += 1
            log.error("template refused", **{"fingerprint.template_id": template_id,
                                              "error.type": type(exc).__name__, "error.message": str(exc)})
            return None

    def encode(self, template_id: str, vec: np.ndarray, dense: np.ndarray | None = None,
               minutiae: MinutiaeTemplate | None = None) -> bytes:
        plain = np.asarray(vec, dtype="<f2").tobytes()
        if dense is not None:
            c, h, w = dense.shape
            magic = _GRID_MAGIC if minutiae is None else _MINUTIAE_MAGIC
            plain = _HEADER.pack(magic, len(vec), c, h, w) + plain + np.asarray(dense, dtype=np.int8).tobytes()
            if minutiae is not None:
                plain += minutiae.to_bytes()
        return self.cipher.seal(template_id, plain) if self.cipher else plain

    def decode(self, template_id: str, blob: bytes, allow_plain: bool = False) -> Decoded:
        """The float32 search vector, the int8 grid (None for a bare vector) and the minutiae (None
        when the layout has none). With a cipher, a row that is not sealed is refused unless
        `allow_plain` (only `rotate-key`, sealing an old gallery on purpose): anyone who can write to the
        database could otherwise plant a plain template under a victim's subject id."""
        if blob.startswith(MAGIC):
            if self.cipher is None:
                raise CipherError("encrypted templates but no TEMPLATE_KEY_FILE is configured")
            blob = self.cipher.open(template_id, blob)
        elif self.cipher is not None and not allow_plain:
            raise UnsealedTemplate("the row is not sealed although TEMPLATE_KEY_FILE is configured "
                                   "(seal an older gallery with `fingerprint rotate-key`)")
        if not blob.startswith((_GRID_MAGIC, _MINUTIAE_MAGIC)):
            return np.frombuffer(blob, dtype="<f2").astype(np.float32), None, None
        magic, dim, c, h, w = _HEADER.unpack_from(blob)
        start = _HEADER.size + 2 * dim
        end = start + c * h * w
        vec = np.frombuffer(blob[_HEADER.size : start], dtype="<f2").astype(np.float32)
        dense = np.frombuffer(blob[start:end], dtype=np.int8).reshape(c, h, w)
        minutiae = MinutiaeTemplate.from_bytes(blob[end:]) if magic == _MINUTIAE_MAGIC else None
        return vec, dense, minutiae

    def seal_image(self, template_id: str, image: bytes) -> bytes:
        """An enrolment image as kept (KEEP_ENROLLMENT_IMAGES): sealed under the active key, bound to its template."""
        if self.cipher is None:
            raise CipherError("keeping enrolment images needs TEMPLATE_KEY_FILE")
        return self.cipher.seal(f"image:{template_id}", image)

    def open_image(self, template_id: str, blob: bytes) -> bytes:
        if self.cipher is None:
            raise CipherError("kept enrolment images are sealed but no TEMPLATE_KEY_FILE is configured")
        return self.cipher.open(f"image:{template_id}", blob)

    def reseal_image(self, template_id: str, blob: bytes) -> bytes:
        return self.seal_image(template_id, self.open_image(template_id, blob))

    def reseal(self, template_id: str, blob: bytes) -> bytes:
        """The same template sealed under the active key (key rotation)."""
        return self.encode(template_id, *self.decode(template_id, blob, allow_plain=True))

    def needs_rotation(self, blob: bytes) -> bool:
        """True for a plain row or one sealed under another key, when a key is configured."""
        if self.cipher is None:
            return False
        return self.cipher.key_id_of(blob) != self.cipher.active


PLAIN = EmbeddingCodec()


def encode_embedding(vec: np.ndarray, dense: np.ndarray | None = None, minutiae: MinutiaeTemplate | None = None) -> bytes:
    """Plain bytes (benchmarks seeding a gallery without a key)."""
    return PLAIN.encode("", vec, dense, minutiae)
