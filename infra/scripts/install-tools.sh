#!/usr/bin/env bash
# install-tools.sh — install Vigil's pinned Python tooling into a project-local venv.
#
# Usage:
#   infra/scripts/install-tools.sh              # moto server, AWS SAM CLI, cargo-lambda, cfn-lint,
#                                               # schemathesis, openapi-spec-validator
#   infra/scripts/install-tools.sh --moto-only  # just moto[server] (enough for the test suite)
#   infra/scripts/install-tools.sh --help
#
# The venv lives in `.tools/` at the repository root (git-ignored). Tools end up in `.tools/bin/`
# (moto_server, sam, cargo-lambda, cfn-lint); put it first on PATH or call them by path.
#
# Idempotent: after a successful install the script writes `.tools/.installed-<hash>`, where
# <hash> is the SHA-256 of the requirement list. A rerun with the same list is a no-op; changing a
# pin, or asking for the full set after --moto-only, installs again. The full set includes
# moto[server], so after a full install `--moto-only` is already satisfied.
#
# schemathesis fuzzes the config API against its OpenAPI document in `make test`;
# openapi-spec-validator checks that document against the OpenAPI 3.1 schema.
#
# Needs only python3 (>= 3.9, with the venv module; PYTHON=/path/to/python3 picks another one)
# and access to PyPI (or a mirror / find-links set through the usual PIP_* variables or pip.conf).
#
# Why cfn-lint is pinned to 1.53.3: cfn-lint 1.54–1.58 silently miss invalid values inside
# AWS::Serverless::Function (see shared/toolchain.md); 1.53.3 beside aws-sam-cli 1.170.0 reports
# them, both from `cfn-lint` and from `sam validate --lint`.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

MOTO_REQ='moto[server]==5.2.5'
FULL_REQS=("$MOTO_REQ" 'aws-sam-cli==1.170.0' 'cargo-lambda==1.9.2' 'cfn-lint==1.53.3' 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0' 'standardwebhooks==1.3.0')

mode=full
for arg in "$@"; do
  case "$arg" in
    --moto-only) mode=moto ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-tools.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ $mode == moto ]]; then
  REQS=("$MOTO_REQ")
else
  REQS=("${FULL_REQS[@]}")
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$repo_root/.tools"
python="${PYTHON:-python3}"

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }
hash_of() { printf '%s\n' "$@" | sha256 | cut -c1-16; }
stamp="$venv/.installed-$(hash_of "${REQS[@]}")"
full_stamp="$venv/.installed-$(hash_of "${FULL_REQS[@]}")"

if [[ -f $stamp || ( $mode == moto && -f $full_stamp ) ]] && [[ -x $venv/bin/python ]]; then
  echo "install-tools: $mode tool set already installed in $venv"
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "install-tools: $python not found; install Python 3 (with the venv module) first" >&2
  exit 1
fi

# A venv whose interpreter is gone (e.g. the system Python was upgraded) is rebuilt from scratch.
if [[ -d $venv ]] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "install-tools: $venv is broken; recreating it"
  rm -rf "$venv"
fi
if [[ ! -d $venv ]]; then
  echo "install-tools: creating venv $venv"
  "$python" -m venv "$venv"
fi

echo "install-tools: installing ${REQS[*]}"
start=$SECONDS
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${REQS[@]}"

# Check the tools start (cheap, catches a half-broken install before the stamp is written).
"$venv/bin/moto_server" --help >/dev/null
if [[ $mode == full ]]; then
  SAM_CLI_TELEMETRY=0 "$venv/bin/sam" --version
  "$venv/bin/cargo-lambda" lambda --version
  "$venv/bin/cfn-lint" --version
fi

# Exactly one stamp: the one for the set just installed (stale stamps from other pins go).
rm -f "$venv"/.installed-*
touch "$stamp"
echo "install-tools: done in $((SECONDS - start)) s; tools are in $venv/bin"
