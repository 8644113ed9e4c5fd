"""observability/elasticsearch/setup.sh against a stand-in Elasticsearch: it waits for the cluster, then
sets kibana_system's password, creates Logstash's write-only user and loads the lifecycle policy and the
index template, authenticated."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OBS = Path(__file__).resolve().parents[2] / "observability" / "elasticsearch"


def test_setup_sets_the_password_and_loads_policy_and_template() -> None:
    seen: list[tuple[str, str, str, bytes]] = []
    health_calls = []

    class Fake(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append((self.command, self.path, self.headers.get("authorization", ""), body))
            if self.path.startswith("/_cluster/health"):
                health_calls.append(1)
                ok = len(health_calls) > 1  # not ready at the first ask: the script must wait
                self.send_response(200 if ok else 503)
            else:
                self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_PUT = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PATH": "/usr/bin:/bin", "ELASTICSEARCH_URL": f"http://127.0.0.1:{server.server_port}",
               "TEMPLATES_DIR": str(OBS), "ELASTIC_PASSWORD": "el-secret", "KIBANA_SYSTEM_PASSWORD": "kb-secret",
               "LOGSTASH_WRITER_PASSWORD": "ls-secret"}
        # the retry sleeps 5 s once
        proc = subprocess.run(["sh", str(OBS / "setup.sh")], env=env, capture_output=True, text=True, timeout=60, check=False)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    calls = [(m, p.split("?")[0]) for m, p, _, _ in seen]
    assert calls[-5:] == [("POST", "/_security/user/kibana_system/_password"),
                          ("PUT", "/_security/role/fingerprint_logs_writer"), ("PUT", "/_security/user/logstash_writer"),
                          ("PUT", "/_ilm/policy/fingerprint-api-logs"), ("PUT", "/_index_template/fingerprint-api")]
    expected_auth = "Basic " + base64.b64encode(b"elastic:el-secret").decode()
    assert all(auth == expected_auth for _, _, auth, _ in seen)
    bodies = {p: body for _, p, _, body in seen}
    assert json.loads(bodies["/_security/user/kibana_system/_password"]) == {"password": "kb-secret"}
    assert json.loads(bodies["/_ilm/policy/fingerprint-api-logs"]) == json.loads((OBS / "ilm-policy.json").read_text())
    # Logstash ships as a user that can only write the API's log indices, not as the superuser
    assert json.loads(bodies["/_security/user/logstash_writer"]) == {"password": "ls-secret",
                                                                     "roles": ["fingerprint_logs_writer"]}
    role = json.loads(bodies["/_security/role/fingerprint_logs_writer"])
    assert role["indices"] == [{"names": ["fingerprint-api-*"], "privileges": ["create_index", "create_doc", "auto_configure"]}]
    template = json.loads(bodies["/_index_template/fingerprint-api"])
    assert template["template"]["settings"]["number_of_replicas"] == 0  # one node: no unassignable replica
    assert template["template"]["settings"]["index.lifecycle.name"] == "fingerprint-api-logs"


def test_setup_refuses_to_run_without_credentials() -> None:
    proc = subprocess.run(["sh", str(OBS / "setup.sh")], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode != 0 and "ELASTIC_PASSWORD" in proc.stderr
