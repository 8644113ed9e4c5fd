"""Every protected route needs a valid key with its scope; keys are stored as salted hashes only."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fingerprint.cli import main
from fingerprint.security.api_keys import KeyRing, append_record, new_key
from fingerprint.settings import Settings, SettingsError, load_settings

ROUTES = [  # (method, path, scope)
    ("post", "/api/v1/fingerprint/enroll", "enroll"),
    ("post", "/api/v1/fingerprint/verify", "verify"),
    ("post", "/api/v1/fingerprint/identify", "identify"),
    ("get", "/api/v1/subjects/someone", "admin"),
    ("delete", "/api/v1/subjects/someone", "admin"),
    ("get", "/api/v1/subjects", "admin"),
    ("delete", "/api/v1/templates/00000000-0000-4000-8000-000000000000", "admin"),
    ("get", "/api/v1/templates/00000000-0000-4000-8000-000000000000/minutiae", "admin"),
    ("get", "/api/v1/status", "admin"),
]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "keys.json"
    issued = {}
    for scope in ("enroll", "verify", "identify", "admin"):
        key, record = new_key([scope], name=f"{scope}-only")
        append_record(path, record)
        issued[scope] = key
    return path, issued


def test_keys_file_holds_no_usable_secret(keys: tuple[Path, dict[str, str]]) -> None:
    path, issued = keys
    text = path.read_text()
    for key in issued.values():
        assert key.split("_", 2)[2] not in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    ring = KeyRing.from_file(path)
    assert ring.authenticate(issued["admin"]) is not None
    assert ring.authenticate(issued["admin"] + "x") is None
    assert ring.authenticate("fpk_unknown_secret") is None
    assert ring.authenticate("Bearer nonsense") is None


async def test_every_route_and_scope(app_client: Callable[..., Any], keys: tuple[Path, dict[str, str]],
                                     png_prints: list[list[bytes]]) -> None:
    path, issued = keys
    body = {"image": base64.b64encode(png_prints[0][0]).decode(), "subject_id": "someone"}
    async with app_client(api_keys_file=path) as c:
        for method, url, scope in ROUTES:
            kwargs: dict[str, Any] = {"json": {k: v for k, v in body.items()
                                               if not (url.endswith("identify") and k == "subject_id")}} \
                if method == "post" else {}
            r = await getattr(c, method)(url, **kwargs)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (url, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            r = await getattr(c, method)(url, headers={"Authorization": "Bearer fpk_nope_wrong"}, **kwargs)
            assert r.status_code == 401, url
            for other, key in issued.items():
                r = await getattr(c, method)(url, headers={"Authorization": f"Bearer {key}"}, **kwargs)
                if other == scope:
                    assert r.status_code not in (401, 403), (url, other, r.text)
                else:
                    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (url, other)
        # open routes stay open and say no more than whether the service is ready
        assert (await c.get("/health")).json() == {"status": "ok"}
        public = (await c.get("/api/v1/models/status")).json()
        assert set(public) == {"status", "store", "model_version"} and public["status"] == "ready"
        # a key without the admin scope learns no more; an admin key also sees the decision threshold
        r = await c.get("/api/v1/models/status", headers={"Authorization": f"Bearer {issued['identify']}"})
        assert r.json() == public
        r = await c.get("/api/v1/models/status", headers={"Authorization": f"Bearer {issued['admin']}"})
        assert r.json()["threshold"]["source"] == "synthetic_floor"
        assert (await c.get("/metrics")).status_code == 404  # its own listener (METRICS_PORT)


async def test_security_headers_and_audit_events(app_client: Callable[..., Any], keys: tuple[Path, dict[str, str]],
                                                 png_prints: list[list[bytes]],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, issued = keys
    image = base64.b64encode(png_prints[0][0]).decode()
    async with app_client(api_keys_file=path) as c:
        capsys.readouterr()
        auth = {"Authorization": f"Bearer {issued['enroll']}", "X-Request-ID": "audit-1"}
        r = await c.post("/api/v1/fingerprint/enroll", json={"image": image, "subject_id": "alice"}, headers=auth)
        assert r.status_code == 201
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
        assert r.headers["x-frame-options"] == "DENY"
        r = await c.delete("/api/v1/subjects/alice", headers={"Authorization": f"Bearer {issued['admin']}"})
        assert r.status_code == 200
        r = await c.delete("/api/v1/subjects/alice", headers={"Authorization": f"Bearer {issued['admin']}"})
        assert r.status_code == 404
    events = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"audit"' in x]
    enroll = next(e for e in events if e["event"]["action"] == "enroll")
    assert enroll["event"]["outcome"] == "success" and enroll["user"]["id"] == issued["enroll"].split("_")[1]
    assert enroll["fingerprint"]["subject_ids"] == ["alice"] and enroll["http"]["request"]["id"] == "audit-1"
    erases = [e for e in events if e["event"]["action"] == "erase"]
    assert [e["event"]["outcome"] for e in erases] == ["success", "failure"]
    assert erases[1]["error"]["code"] == "subject_not_found"
    assert image[:40] not in json.dumps(events)


async def test_rate_limit_per_key(app_client: Callable[..., Any], keys: tuple[Path, dict[str, str]]) -> None:
    path, issued = keys
    async with app_client(api_keys_file=path, rate_limit_per_second=3) as c:
        auth = {"Authorization": f"Bearer {issued['admin']}"}
        codes = [(await c.get("/api/v1/subjects/nobody", headers=auth)).status_code for _ in range(8)]
        assert 429 in codes and codes[0] == 404
        r = await c.get("/api/v1/subjects/nobody", headers=auth)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "rate_limited"


def test_public_bind_without_keys_is_refused() -> None:
    with pytest.raises(SettingsError, match="API_KEYS_FILE"):
        load_settings({"HOST": "0.0.0.0"})
    assert load_settings({"HOST": "0.0.0.0", "ALLOW_UNAUTHENTICATED": "true"}).allow_unauthenticated
    assert isinstance(load_settings({}), Settings)


def test_create_key_prints_once_and_stores_hash(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    result = CliRunner().invoke(main, ["create-key", "--scopes", "identify,verify", "--file", str(path)])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().splitlines()[0]
    assert key.startswith("fpk_")
    principal = KeyRing.from_file(path).authenticate(key)
    assert principal is not None and principal.scopes == {"identify", "verify"}
    bad = CliRunner().invoke(main, ["create-key", "--scopes", "root", "--file", str(path)])
    assert bad.exit_code != 0


# --- issue 28: the bind guard, the key flood and the key-id timing oracle ---------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "0", "192.0.2.7"])
def test_serve_flag_cannot_bind_every_interface_without_keys(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--host` is checked like HOST: before, the flag was applied after the check and listened unauthenticated."""
    import fingerprint.server

    for name in ("HOST", "API_KEYS_FILE", "ALLOW_UNAUTHENTICATED"):
        monkeypatch.delenv(name, raising=False)

    def listen(settings: Settings) -> None:
        raise AssertionError(f"would listen unauthenticated on {settings.host!r}")

    monkeypatch.setattr(fingerprint.server, "run_server", listen)
    result = CliRunner().invoke(main, ["serve", "--host", host, "--port", "1"])
    assert result.exit_code == 2 and "API_KEYS_FILE" in result.output, result.output
    assert load_settings({"HOST": "::1"}).host == "::1"  # loopback stays allowed


def test_serve_process_refuses_to_listen_on_every_interface_without_keys(tmp_path: Path) -> None:
    from tests.process import Server

    server = Server(tmp_path / "data", "--host", "0.0.0.0")
    assert server.proc.wait(60) == 2
    output = server.output()
    assert "API_KEYS_FILE" in output and "Traceback" not in output


async def test_rotating_key_ids_do_not_buy_fresh_rate_limit_buckets(app_client: Callable[..., Any],
                                                                     keys: tuple[Path, dict[str, str]]) -> None:
    """Random `fpk_` ids from one client share that client's bucket: before, each id had its own (no 429 ever)."""
    import secrets

    path, issued = keys
    async with app_client(api_keys_file=path, rate_limit_per_second=5) as c:
        codes = []
        for _ in range(20):
            forged = f"fpk_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            codes.append((await c.get("/api/v1/subjects/x", headers={"Authorization": f"Bearer {forged}"})).status_code)
        assert codes[0] == 401 and codes.count(429) >= 10, codes
        # a valid key has its own bucket: the flood from the same address does not lock it out
        r = await c.get("/api/v1/subjects/x", headers={"Authorization": f"Bearer {issued['admin']}"})
        assert r.status_code == 404


def test_every_presented_key_costs_one_cheap_hash_and_no_kdf(keys: tuple[Path, dict[str, str]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown ids, known ids with a wrong secret (before and after the key's first use) and valid keys do the
    same work: one salted SHA-256 and one constant-time compare. Before, an unknown id cost a 26 ms scrypt
    and a known one 0.01 ms (an oracle for valid ids, and CPU an attacker could multiply)."""
    import hashlib

    from fingerprint.security import api_keys

    path, issued = keys
    ring = KeyRing.from_file(path)
    calls: list[str] = []
    real_sha = api_keys._sha256
    monkeypatch.setattr(api_keys, "_sha256", lambda secret, salt: calls.append("sha256") or real_sha(secret, salt))
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: calls.append("scrypt") or b"")
    admin_id = issued["admin"].split("_")[1]
    for presented in (f"fpk_{admin_id}_wrong", issued["admin"], f"fpk_{admin_id}_wrong", "fpk_000000000000_wrong",
                      "fpk_unknownid_" + "x" * 43):
        calls.clear()
        ring.authenticate(presented)
        assert calls == ["sha256"], (presented, calls)


def test_legacy_scrypt_keys_still_work_within_a_budget(tmp_path: Path) -> None:
    import hashlib
    import secrets as s

    from fingerprint.security.api_keys import AuthBusy

    salt, secret = s.token_bytes(16), s.token_urlsafe(32)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    path = tmp_path / "old.json"
    path.write_text(json.dumps([{"key_id": "abc", "salt": salt.hex(), "hash": digest.hex(), "scopes": ["admin"]}]))
    ring = KeyRing.from_file(path)
    assert ring.legacy_ids == ["abc"]
    assert ring.authenticate("fpk_abc_wrong") is None
    principal = ring.authenticate(f"fpk_abc_{secret}")
    assert principal is not None and principal.scopes == {"admin"}
    spent = KeyRing.from_file(path)
    with pytest.raises(AuthBusy):
        for _ in range(20):  # wrong secrets for a legacy id: a few scrypt checks, then refused without hashing
            spent.authenticate("fpk_abc_wrong")
    assert ring.authenticate(f"fpk_abc_{secret}") is not None  # once checked, a legacy key is as cheap as a new one
