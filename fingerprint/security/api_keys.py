"""API keys: `fpk_<key id>_<secret>`, stored only as salted scrypt hashes with their scopes.

The key id finds the record; the secret is checked by comparing scrypt digests in constant time, so a
stolen keys file does not reveal usable keys and timing does not reveal how much of a guess matched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

SCOPES = frozenset({"enroll", "verify", "identify", "admin"})
_PREFIX = "fpk"
_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~20 ms per new key hash, verified once per key then cached


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    salt: str  # hex
    hash: str  # hex scrypt(secret, salt)
    scopes: tuple[str, ...]
    name: str = ""


def _digest(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)


def new_key(scopes: list[str], name: str = "") -> tuple[str, KeyRecord]:
    """A fresh key (shown once) and the record to store."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    record = KeyRecord(key_id, salt.hex(), _digest(secret, salt).hex(), tuple(sorted(scopes)), name)
    return f"{_PREFIX}_{key_id}_{secret}", record


def append_record(path: Path, record: KeyRecord) -> None:
    records = load_records(path) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps([{**asdict(r), "scopes": list(r.scopes)} for r in records], indent=2) + "\n")
    path.chmod(0o600)


def load_records(path: Path) -> list[KeyRecord]:
    raw = json.loads(path.read_text())
    return [KeyRecord(r["key_id"], r["salt"], r["hash"], tuple(r["scopes"]), r.get("name", "")) for r in raw]


def split_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a presented `fpk_<key id>_<secret>`, None when it is not shaped like one."""
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


class KeyRing:
    def __init__(self, records: list[KeyRecord]) -> None:
        self._records = {r.key_id: r for r in records}
        self._verified: dict[str, bytes] = {}  # key id -> sha256(secret) of a key already checked by scrypt

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls(load_records(path))

    def authenticate(self, presented: str) -> Principal | None:
        split = split_key(presented)
        if split is None:
            return None
        key_id, secret = split
        record = self._records.get(key_id)
        if record is None:
            # spend the same work as a real check so unknown ids are not distinguishable by timing
            _digest(secret, b"\x00" * 16)
            return None
        fast = hashlib.sha256(secret.encode()).digest()
        cached = self._verified.get(key_id)
        if cached is not None:
            ok = hmac.compare_digest(cached, fast)
        else:
            ok = hmac.compare_digest(_digest(secret, bytes.fromhex(record.salt)), bytes.fromhex(record.hash))
            if ok:
                self._verified[key_id] = fast
        return Principal(key_id, frozenset(record.scopes)) if ok else None
