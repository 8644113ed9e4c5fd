"""Templates encrypted at rest with AES-256-GCM; the key id travels in each row so keys can rotate.

Sealed form: b"FPE1" | key-id length (1 byte) | key id | 12-byte nonce | ciphertext+tag of the float16
embedding. The template id is the associated data: a sealed embedding copied onto another row fails
to decrypt instead of silently matching the wrong subject.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"FPE1"


def sealed_key_id(blob: bytes) -> str | None:
    """The id of the key a sealed template names; None for a plain one."""
    if not blob.startswith(MAGIC):
        return None
    return blob[5 : 5 + blob[4]].decode(errors="replace")


class CipherError(RuntimeError):
    pass


class TemplateCipher:
    def __init__(self, keys: dict[str, bytes], active: str) -> None:
        if active not in keys:
            raise CipherError(f"active key {active!r} is not among the keys")
        for kid, key in keys.items():
            if len(key) != 32 or not 0 < len(kid.encode()) < 256:
                raise CipherError(f"key {kid!r} must be 32 bytes (AES-256) with a short id")
        self._aead = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active = active

    @classmethod
    def from_file(cls, path: Path) -> TemplateCipher:
        """JSON `{"active": "k2", "keys": {"k1": "<base64 32 bytes>", "k2": "..."}}` (a mounted Secret)."""
        raw = json.loads(path.read_text())
        return cls({k: base64.b64decode(v) for k, v in raw["keys"].items()}, raw["active"])

    @staticmethod
    def new_key_file(path: Path, key_id: str, previous: Path | None = None) -> None:
        keys = json.loads(previous.read_text())["keys"] if previous else {}
        keys[key_id] = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
        path.write_text(json.dumps({"active": key_id, "keys": keys}, indent=2) + "\n")
        path.chmod(0o600)

    def seal(self, template_id: str, plain: bytes) -> bytes:
        nonce = os.urandom(12)
        kid = self.active.encode()
        return MAGIC + bytes([len(kid)]) + kid + nonce + self._aead[self.active].encrypt(nonce, plain, template_id.encode())

    def key_id_of(self, blob: bytes) -> str | None:
        return sealed_key_id(blob)

    def open(self, template_id: str, blob: bytes) -> bytes:
        kid = self.key_id_of(blob)
        if kid is None:
            raise CipherError("the template is not encrypted")
        aead = self._aead.get(kid)
        if aead is None:
            raise CipherError(f"no key {kid!r} to decrypt this template")
        start = 5 + len(kid.encode())
        nonce, body = blob[start : start + 12], blob[start + 12 :]
        try:
            return aead.decrypt(nonce, body, template_id.encode())
        except InvalidTag as exc:
            raise CipherError("template authentication failed (wrong key, tampered or moved row)") from exc
