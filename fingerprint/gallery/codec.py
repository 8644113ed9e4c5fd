"""How an embedding is kept in a store row: float16 little-endian bytes (512 bytes at d=256),
sealed with AES-GCM when a template key is configured."""

from __future__ import annotations

import numpy as np

from fingerprint.security.template_cipher import MAGIC, CipherError, TemplateCipher


class EmbeddingCodec:
    def __init__(self, cipher: TemplateCipher | None = None) -> None:
        self.cipher = cipher

    def encode(self, template_id: str, vec: np.ndarray) -> bytes:
        plain = np.asarray(vec, dtype="<f2").tobytes()
        return self.cipher.seal(template_id, plain) if self.cipher else plain

    def decode(self, template_id: str, blob: bytes) -> np.ndarray:
        if blob.startswith(MAGIC):
            if self.cipher is None:
                raise CipherError("encrypted templates but no TEMPLATE_KEY_FILE is configured")
            blob = self.cipher.open(template_id, blob)
        return np.frombuffer(blob, dtype="<f2").astype(np.float32)

    def needs_rotation(self, blob: bytes) -> bool:
        """True for a plain row or one sealed under another key, when a key is configured."""
        if self.cipher is None:
            return False
        return self.cipher.key_id_of(blob) != self.cipher.active


PLAIN = EmbeddingCodec()


def encode_embedding(vec: np.ndarray) -> bytes:
    """Plain float16 bytes (benchmarks seeding a gallery without a key)."""
    return PLAIN.encode("", vec)
