#!/usr/bin/env bash
# console-check.sh — the web console's build checks (run by `make test`):
#   1. src/api/schema.d.ts is what openapi-typescript generates from the checked-in
#      functions/config-api/openapi.json (an API change regenerates the console's types);
#   2. `tsc --noEmit` passes (an API change that breaks the console breaks the build);
#   3. the committed dist/ (compiled into the config-api binary) is byte for byte what esbuild
#      builds from src/ (a source change without a rebuild cannot land).
# Prints each bundle's size, raw and gzipped.
#
# Usage: infra/scripts/console-check.sh            check
#        infra/scripts/console-check.sh --update   regenerate schema.d.ts and rebuild dist/
# Needs node and the console's node_modules (`npm ci`, done by install-tools.sh).
set -euo pipefail
console="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/functions/config-api/console"
cd "$console"

if [[ ! -x node_modules/.bin/esbuild ]]; then
  echo "console-check: node_modules missing; running npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [[ ${1:-} == --update ]]; then
  node_modules/.bin/openapi-typescript ../openapi.json -o src/api/schema.d.ts --silent
  node_modules/.bin/tsc --noEmit
  node build.mjs
  echo "console-check: schema.d.ts and dist/ updated"
  exit 0
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

node_modules/.bin/openapi-typescript ../openapi.json -o "$scratch/schema.d.ts" --silent
if ! diff -q "$scratch/schema.d.ts" src/api/schema.d.ts >/dev/null; then
  echo "console-check: src/api/schema.d.ts is out of date with openapi.json;" \
    "run infra/scripts/console-check.sh --update and commit the result" >&2
  diff -u src/api/schema.d.ts "$scratch/schema.d.ts" | head -40 >&2
  exit 1
fi
echo "console-check: schema.d.ts matches openapi.json"

node_modules/.bin/tsc --noEmit
echo "console-check: tsc --noEmit passed"

node build.mjs "$scratch/dist"
if ! diff -r "$scratch/dist" dist >/dev/null; then
  echo "console-check: dist/ differs from what src/ builds;" \
    "run infra/scripts/console-check.sh --update and commit the result" >&2
  diff -rq "$scratch/dist" dist >&2 || true
  exit 1
fi
for f in dist/app.js dist/app.css dist/index.html; do
  printf 'console-check: %-16s %7d bytes, %6d gzipped\n' "$f" "$(wc -c <"$f")" "$(gzip -9c "$f" | wc -c)"
done
echo "console-check: dist/ is what src/ builds"
