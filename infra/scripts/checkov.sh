#!/usr/bin/env bash
# checkov.sh — the template's security checks: checkov (pinned, .tools/bin/checkov) over
# template.yaml with the skips in infra/checkov.yaml (each with its reason). Fails on any failed
# check. Offline, no AWS credentials. Run by `make test` and `make checkov`.
#
# Usage: infra/scripts/checkov.sh [TEMPLATE]      (default: template.yaml at the repo root)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
template="${1:-$repo_root/template.yaml}"
"$repo_root/infra/scripts/install-tools.sh" >/dev/null
# No version check against the network, no telemetry upload, no download of external checks.
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
"$repo_root/.tools/bin/checkov" --config-file "$repo_root/infra/checkov.yaml" -f "$template" --skip-download
