#!/bin/sh
# One-shot Elasticsearch setup, run by compose (es-setup) and by the cluster (Job elasticsearch-setup):
# the kibana_system password Kibana logs in with, the logstash_writer user Logstash ships with (it may
# only write the API's log indices: the superuser `elastic` stays with operators), the 30-day lifecycle
# policy and the index template (one shard, no replica on a single node). Mounting the JSON files alone
# loads nothing. Idempotent.
set -eu
es="${ELASTICSEARCH_URL:-http://elasticsearch:9200}"
dir="${TEMPLATES_DIR:-/templates}"
auth="elastic:${ELASTIC_PASSWORD:?ELASTIC_PASSWORD is required}"
json="Content-Type: application/json"
tries=0
until curl -fsS -u "$auth" "$es/_cluster/health?wait_for_status=yellow&timeout=10s" >/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "elasticsearch at $es did not become available" >&2; exit 1; }
  sleep 5
done
curl -fsS -u "$auth" -X POST "$es/_security/user/kibana_system/_password" -H "$json" \
  -d "{\"password\": \"${KIBANA_SYSTEM_PASSWORD:?KIBANA_SYSTEM_PASSWORD is required}\"}" >/dev/null
curl -fsS -u "$auth" -X PUT "$es/_security/role/fingerprint_logs_writer" -H "$json" -d '{
  "cluster": ["monitor"],
  "indices": [{"names": ["fingerprint-api-*"], "privileges": ["create_index", "create_doc", "auto_configure"]}]
}' >/dev/null
curl -fsS -u "$auth" -X PUT "$es/_security/user/logstash_writer" -H "$json" \
  -d "{\"password\": \"${LOGSTASH_WRITER_PASSWORD:?LOGSTASH_WRITER_PASSWORD is required}\", \"roles\": [\"fingerprint_logs_writer\"]}" >/dev/null
curl -fsS -u "$auth" -X PUT "$es/_ilm/policy/fingerprint-api-logs" -H "$json" --data-binary "@$dir/ilm-policy.json" >/dev/null
curl -fsS -u "$auth" -X PUT "$es/_index_template/fingerprint-api" -H "$json" --data-binary "@$dir/index-template.json" >/dev/null
echo "elasticsearch set up: kibana_system password, logstash_writer user, lifecycle policy fingerprint-api-logs, index template fingerprint-api"
