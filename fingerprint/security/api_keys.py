"""API keys: `fpk_<key id>_<secret>`, stored only as salted hashes with their scopes.

The secret is 256 random bits, so a salted SHA-256 is as hard to invert as any slow KDF and costs
about a microsecond: an attacker who sends random keys cannot make the service spend seconds of CPU
on them. Every presented key, known id or not, costs the same one hash and one constant-time compare,
so response time does not tell a valid key id from an unknown one.

Keys files written by earlier releases hold scrypt hashes. They still work: a correct key is checked by scrypt
once and then by its SHA-256; scrypt checks share a small budget per second, so wrong secrets for a
legacy id cannot take the CPU either. Re-issue legacy keys (`fingerprint create-key`) to drop scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

SCOPES = frozenset({"enroll", "verify", "identify", "admin"})
_PREFIX = "fpk"
_MAX_TOKEN = 256  # longer bearer tokens are not keys of ours: refused before any hashing
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1  # legacy records only
LEGACY_SCRYPT_PER_SECOND = 4.0


class AuthBusy(Exception):
    """The legacy scrypt budget is spent: answer 429 instead of hashing."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    salt: str  # hex
    hash: str  # hex sha256(salt | secret), or scrypt(secret, salt) for kdf "scrypt"
    scopes: tuple[str, ...]
    name: str = ""
    kdf: str = "sha256"


def _sha256(secret: str, salt: bytes) -> bytes:
    return hashlib.sha256(salt + secret.encode()).digest()


def _scrypt(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32)


def new_key(scopes: list[str], name: str = "") -> tuple[str, KeyRecord]:
    """A fresh key (shown once) and the record to store."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = KeyRecord(key_id, salt.hex(), _sha256(secret, salt).hex(), tuple(sorted(scopes)), name)
    return f"{_PREFIX}_{key_id}_{secret}", record


def append_record(path: Path, record: KeyRecord) -> None:
    records = load_records(path) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps([{**asdict(r), "scopes": list(r.scopes)} for r in records], indent=2) + "\n")
    path.chmod(0o600)


def load_records(path: Path) -> list[KeyRecord]:
    raw = json.loads(path.read_text())
    return [KeyRecord(r["key_id"], r["salt"], r["hash"], tuple(r["scopes"]), r.get("name", ""), r.get("kdf", "scrypt"))
            for r in raw]


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a presented `fpk_<key id>_<secret>`, None when it is not shaped like one."""
    if len(presented) > _MAX_TOKEN:
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX:
        return None
    return parts[1], parts[2]


def bearer_token(authorization: str) -> str:
    """The token of an `Authorization: Bearer <token>` header value, empty for any other scheme."""
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]


class _Budget:
    """A token bucket shared by every legacy scrypt check in the process."""

    def __init__(self, per_second: float) -> None:
        self._rate = per_second
        self._tokens = per_second
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class KeyRing:
    def __init__(self, records: list[KeyRecord], legacy_per_second: float = LEGACY_SCRYPT_PER_SECOND) -> None:
        self._records = {r.key_id: r for r in records}
        # (salt, sha256 digest) per key id; legacy ids get theirs after their first scrypt success
        self._fast: dict[str, tuple[bytes, bytes]] = {
            r.key_id: (bytes.fromhex(r.salt), bytes.fromhex(r.hash)) for r in records if r.kdf == "sha256"}
        self._unknown = (secrets.token_bytes(16), secrets.token_bytes(32))  # compared against, never matches
        self._legacy_budget = _Budget(legacy_per_second)

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls(load_records(path))

    @property
    def legacy_ids(self) -> list[str]:
        return [k for k, r in self._records.items() if r.kdf != "sha256"]

    def authenticate(self, presented: str) -> Principal | None:
        split = split_key(presented)
        if split is None:
            return None
        key_id, secret = split
        record = self._records.get(key_id)
        fast = self._fast.get(key_id)
        if record is not None and fast is None:
            return self._legacy(record, secret)
        salt, expected = fast if fast is not None else self._unknown
        # the same hash and compare whether or not the id exists: timing says nothing about ids
        ok = hmac.compare_digest(_sha256(secret, salt), expected)
        return Principal(key_id, frozenset(record.scopes)) if ok and record is not None else None

    def _legacy(self, record: KeyRecord, secret: str) -> Principal | None:
        if not self._legacy_budget.take():
            raise AuthBusy()
        if not hmac.compare_digest(_scrypt(secret, bytes.fromhex(record.salt)), bytes.fromhex(record.hash)):
            return None
        salt = secrets.token_bytes(16)
        self._fast[record.key_id] = (salt, _sha256(secret, salt))
        return Principal(record.key_id, frozenset(record.scopes))
