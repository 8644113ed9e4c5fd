"""Two real replicas on one PostgreSQL under concurrent writers: enrolls, each on a random replica, three
in four erased right away on the other replica; then every subject is checked on both replicas (verify
answers 404 unless the subject is in that replica's index; identify must never name an erased one).

    PYTHONPATH=. .venv/bin/python -m lab.benchmarks.replicas --writers 8 --per-writer 50
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import json
import random
import tempfile
import time
from pathlib import Path

import httpx

from lab.synth.export import encode_png, synthetic_impressions
from tests.pg import PostgresServer  # a throwaway cluster from Debian's binaries (installed by make test)
from tests.process import Server

PRINTS = [[encode_png(i) for i in f] for f in synthetic_impressions([11, 22, 33, 44], impressions=3, seed=7)]


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode()


def _image(subject: str, impression: int) -> str:
    w, i = (int(x) for x in subject[1:].split("-"))
    return _b64(PRINTS[(w + i) % 4][impression])


def _writer(servers: list[Server], w: int, per_writer: int) -> tuple[list[str], list[str]]:
    rng, kept, erased = random.Random(w), [], []
    with httpx.Client(timeout=120) as c:
        for i in range(per_writer):
            subject, k = f"w{w}-{i}", rng.randrange(2)
            r = c.post(servers[k].url + "/api/v1/fingerprint/enroll", json={"image": _image(subject, 0), "subject_id": subject})
            assert r.status_code == 201, r.text
            if i % 4:
                assert c.delete(servers[1 - k].url + f"/api/v1/subjects/{subject}").status_code == 200
                erased.append(subject)
            else:
                kept.append(subject)
    return kept, erased


def _check(server: Server, kept: list[str], erased: list[str]) -> tuple[int, int]:
    erased_matched = missing = 0
    with httpx.Client(base_url=server.url, timeout=120) as c:
        for subject in kept + erased:
            code = c.post("/api/v1/fingerprint/verify", json={"image": _image(subject, 1), "subject_id": subject}).status_code
            erased_matched += subject in erased and code != 404
            missing += subject in kept and code != 200
        for finger in PRINTS:
            r = c.post("/api/v1/fingerprint/identify", json={"image": _b64(finger[1]), "top_k": 1000, "threshold": 0.0})
            erased_matched += len({x["subject_id"] for x in r.json()["candidates"]} & set(erased))
    return erased_matched, missing


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--per-writer", type=int, default=50)
    args = ap.parse_args(argv)
    pg = PostgresServer()
    pg.start()
    tmp = Path(tempfile.mkdtemp())
    servers: list[Server] = []
    try:
        url = pg.create_database("replicas")
        servers = [Server(tmp / name, DATABASE_URL=url) for name in ("a", "b")]
        for s in servers:
            s.wait_ready(120)
        t0 = time.time()
        with concurrent.futures.ThreadPoolExecutor(args.writers) as pool:
            results = list(pool.map(lambda w: _writer(servers, w, args.per_writer), range(args.writers)))
        wrote = time.time() - t0
        kept = [s for k, _ in results for s in k]
        erased = [s for _, e in results for s in e]
        time.sleep(1.5)  # one sync interval: the bound on replica staleness
        checks = [_check(s, kept, erased) for s in servers]
        report: dict[str, object] = {
            "writers": args.writers, "enrolled": len(kept) + len(erased), "erased": len(erased),
            "write_seconds": round(wrote, 1), "erased_subjects_matched": sum(c[0] for c in checks),
            "acknowledged_not_identifiable": sum(c[1] for c in checks)}
        print(json.dumps(report))
        return report
    finally:
        for s in servers:
            s.stop()
        pg.destroy()


if __name__ == "__main__":
    main()
