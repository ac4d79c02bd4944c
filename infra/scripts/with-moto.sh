#!/usr/bin/env bash
# with-moto.sh — run a command with one moto server on a free loopback port, then stop it.
#
# Usage: infra/scripts/with-moto.sh <command> [args...]
#
# Exports AWS_ENDPOINT_URL (and dummy credentials, region us-east-1) for the command, so the
# AWS SDK and the local stack talk to moto over the wire. Every test creates its own
# uniquely-prefixed tables, queues and secrets, so tests can share this one server.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="$repo_root/.tools/bin/python"
if [[ ! -x $repo_root/.tools/bin/moto_server ]]; then
  echo "with-moto: moto is not installed in .tools; run infra/scripts/install-tools.sh" >&2
  exit 1
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp -t vigil-moto.XXXXXX.log)"
# moto_server.py: moto with DynamoDB requests serialised (see the file for why).
"$python" "$repo_root/infra/scripts/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
cleanup() { kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT

for _ in $(seq 1 300); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/moto-api/data.json" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then echo "with-moto: moto exited:" >&2; cat "$log" >&2; exit 1; fi
  sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
echo "with-moto: moto server at $AWS_ENDPOINT_URL" >&2
"$@"
