#!/usr/bin/env bash
# sam-build.sh — build the Lambda bundles exactly as `sam deploy` ships them, then print and
# bound their sizes. `make sam-build` runs it; `make package-check` runs it before emulating them.
#
# Usage: infra/scripts/sam-build.sh            (tools must be installed: make tools)
#
# How it builds, and why:
#   * `sam build` with the template's BuildMethod rust-cargolambda (cargo-lambda + zig, release,
#     arm64): the deploy's own path, so what is checked is what ships.
#   * The Lambda target (aarch64-unknown-linux-gnu) is added by install-tools.sh before this runs:
#     left to cargo-lambda, each function's build adds it, and `sam build --parallel` ran five
#     `rustup target add` at once (four failed; one function compiled without the target's std).
#   * Sequential, not --parallel: the five functions share one Cargo target directory (SAM's
#     builder reads it from `cargo metadata`, which honours CARGO_TARGET_DIR), so the first build
#     compiles the dependencies once and the other four reuse them. In parallel they would only
#     queue on Cargo's target-directory lock, and on 2 cores the first would share its CPUs.
#   * CARGO_TARGET_DIR: the workspace's `target/` unless set. Only the lambda/ and
#     aarch64-unknown-linux-gnu/ subfolders are the arm64 build's; host build scripts share
#     `release/` with a host release build.
#
# Size budget: each bundle's `bootstrap` (unzipped) must stay within BUDGET_MB below, and the zip
# Lambda receives is printed beside it. Lambda's own limits are 50 MB zipped / 250 MB unzipped;
# ours are far tighter because size is cold-start time (the binary is read from the code store
# on every cold start). Measured 2026-12-06: 10–12 MB unzipped, 4–5 MB zipped (README).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# Unzipped bootstrap budget per function, MB (logical id in template.yaml -> budget).
declare -A BUDGET_MB=(
  [AuditPollerFunction]=16
  [AlertEvaluatorFunction]=16
  [TicketDispatcherFunction]=16
  [ConfigApiFunction]=18
  [WebhookReceiverFunction]=16
)

bin="$PWD/.tools/bin"
if [[ ! -x $bin/sam || ! -x $bin/cargo-lambda ]]; then
  echo "sam-build: SAM CLI / cargo-lambda missing; run make tools (infra/scripts/install-tools.sh)" >&2
  exit 1
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "sam-build: the aarch64-unknown-linux-gnu target is missing; run infra/scripts/install-tools.sh" >&2
  exit 1
fi
export PATH="$bin:$PATH" SAM_CLI_TELEMETRY=0
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

start=$SECONDS
sam build --template-file template.yaml
echo "sam-build: sam build took $((SECONDS - start)) s (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"

# Every function the built template declares must have a bootstrap within its budget.
built=.aws-sam/build
functions=$(python3 - "$built/template.yaml" <<'EOF'
import re, sys
# The built template is YAML with short-form tags; a line scan is enough for the logical ids.
text = open(sys.argv[1]).read()
ids = re.findall(r"^  ([A-Za-z0-9]+):\n    Type: AWS::Serverless::Function", text, re.M)
print(" ".join(ids))
EOF
)
if [[ -z $functions ]]; then
  echo "sam-build: no functions found in $built/template.yaml" >&2
  exit 1
fi
failed=0
printf '%-26s %12s %12s %10s\n' function "bootstrap MB" "zipped MB" "budget MB"
for fn in $functions; do
  budget="${BUDGET_MB[$fn]:-}"
  if [[ -z $budget ]]; then
    echo "sam-build: $fn has no size budget in infra/scripts/sam-build.sh; add one" >&2
    failed=1
    continue
  fi
  # Prints the row; exit 1 when the bootstrap is missing, not an arm64 ELF, or over budget.
  python3 - "$built/$fn/bootstrap" "$fn" "$budget" <<'EOF' || failed=1
import io, os, sys, zipfile
path, fn, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not os.access(path, os.X_OK):
    sys.exit(f"sam-build: {fn} has no executable bootstrap at {path}")
with open(path, "rb") as f:
    head = f.read(20)
# ELF magic, 64-bit, little-endian, e_machine 0xB7 (EM_AARCH64).
if head[:4] != b"\x7fELF" or head[4] != 2 or int.from_bytes(head[18:20], "little") != 0xB7:
    sys.exit(f"sam-build: {path} is not an arm64 ELF executable")
size = os.path.getsize(path)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(path, "bootstrap")
print(f"{fn:<26} {size / 2**20:12.1f} {len(buf.getvalue()) / 2**20:12.1f} {budget:10}")
if size > budget * 2**20:
    sys.exit(f"sam-build: {fn} bootstrap is over its {budget} MB budget")
EOF
done
if (( failed )); then
  exit 1
fi
echo "sam-build: every bundle built and within budget in $((SECONDS - start)) s"
