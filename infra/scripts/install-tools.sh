#!/usr/bin/env bash
# install-tools.sh — install Vigil's pinned Python tooling into a project-local venv.
#
# Usage:
#   infra/scripts/install-tools.sh              # moto server, AWS SAM CLI, cargo-lambda, cfn-lint,
#                                               # schemathesis, openapi-spec-validator
#   infra/scripts/install-tools.sh --moto-only  # just moto[server] (enough for the test suite)
#   infra/scripts/install-tools.sh --emulator   # full set + arm64 user-mode emulation (apt-get:
#                                               # qemu-user-static, libc6-arm64-cross) for
#                                               # `make package-check`
#   infra/scripts/install-tools.sh --help
#
# The full set also prepares the web console's checks and browser tests: `npm ci` in
# functions/config-api/console (esbuild, TypeScript, openapi-typescript, axe-core: exact versions
# from its package-lock.json; rerun when the lock file changes), Debian's `chromium` (apt-get,
# only when /usr/bin/chromium is missing) and Playwright's Python package, which drives that
# chromium by `executable_path` and downloads no browser of its own.
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
# openapi-spec-validator checks that document against the OpenAPI 3.1 schema; checkov checks the
# template's security posture (infra/scripts/checkov.sh, skips listed in infra/checkov.yaml).
#
# The full set also adds the Lambda build target: `rustup target add aarch64-unknown-linux-gnu`
# (checked on every run, even when the Python tools are already installed). cargo-lambda would
# otherwise add it itself from inside `sam build`, once per function, and five concurrent
# `rustup target add` race (seen: four failed and one function then compiled without the
# target's std). The cross linker is zig, which cargo-lambda's wheel brings (`ziglang`).
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
FULL_REQS=("$MOTO_REQ" 'aws-sam-cli==1.170.0' 'cargo-lambda==1.9.2' 'cfn-lint==1.53.3' 'schemathesis==4.32.5' 'openapi-spec-validator==0.9.0' 'standardwebhooks==1.3.0' 'checkov==3.3.30' 'playwright==1.65.2')
# checkov pins boto3 exactly (1.35.x) and aws-sam-cli needs boto3 1.43: checkov gets a venv of its
# own inside .tools/ (.tools/checkov-venv), linked as .tools/bin/checkov.
CHECKOV_REQ='checkov==3.3.30'
LAMBDA_TARGET=aarch64-unknown-linux-gnu
EMULATOR_DEBS=(qemu-user-static libc6-arm64-cross)
CONSOLE_DIR=functions/config-api/console

mode=full
emulator=0
for arg in "$@"; do
  case "$arg" in
    --moto-only) mode=moto ;;
    --emulator) emulator=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install-tools.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

if [[ $mode == moto && $emulator == 1 ]]; then
  echo "install-tools.sh: --emulator needs the full tool set, not --moto-only" >&2
  exit 2
fi
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

# The Rust target cargo-lambda builds for, added once before any build (see above).
ensure_lambda_target() {
  if ! command -v rustup >/dev/null 2>&1; then
    echo "install-tools: rustup not found; install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
  fi
  if ! rustup target list --installed | grep -qx "$LAMBDA_TARGET"; then
    echo "install-tools: rustup target add $LAMBDA_TARGET"
    rustup target add "$LAMBDA_TARGET"
  fi
}

# qemu-aarch64-static and the arm64 C library it loads the bundles against (Debian/Ubuntu).
ensure_emulator() {
  if [[ -x /usr/bin/qemu-aarch64-static && -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]]; then
    return
  fi
  # Without apt-get: install qemu-user (qemu-aarch64-static) and an arm64 glibc under
  # /usr/aarch64-linux-gnu by hand.
  apt_install "${EMULATOR_DEBS[@]}"
}

# apt-get install as root, or through sudo.
apt_install() {
  local apt=(apt-get)
  if [[ $(id -u) != 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-tools: need root (or sudo) to apt-get install $*" >&2
      exit 1
    fi
    apt=(sudo apt-get)
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: no apt-get; install $* by hand" >&2
    exit 1
  fi
  echo "install-tools: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null \
    || { "${apt[@]}" update -q >/dev/null && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -q --no-install-recommends "$@" >/dev/null; }
}

# The console's npm packages (exact versions from its lock file), installed again only when the
# lock file changed since the last `npm ci`; and the browser its tests drive.
ensure_console_tools() {
  local dir="$repo_root/$CONSOLE_DIR"
  if ! command -v npm >/dev/null 2>&1; then
    echo "install-tools: npm not found; install Node.js 20 or later (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  local lock_stamp="$dir/node_modules/.vigil-lock-$(sha256 <"$dir/package-lock.json" | cut -c1-16)"
  if [[ ! -f $lock_stamp ]]; then
    echo "install-tools: npm ci in $CONSOLE_DIR"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$lock_stamp"
  fi
  if [[ ! -x /usr/bin/chromium ]]; then
    apt_install chromium
  fi
}

if [[ $mode == full ]]; then
  ensure_lambda_target
  ensure_console_tools
fi
if [[ $emulator == 1 ]]; then
  ensure_emulator
fi

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
main_reqs=()
for req in "${REQS[@]}"; do [[ $req == "$CHECKOV_REQ" ]] || main_reqs+=("$req"); done
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${main_reqs[@]}"
if [[ $mode == full ]]; then
  checkov_venv="$venv/checkov-venv"
  [[ -x $checkov_venv/bin/python ]] || "$python" -m venv "$checkov_venv"
  "$checkov_venv/bin/python" -m pip install --quiet --disable-pip-version-check "$CHECKOV_REQ"
  ln -sf "$checkov_venv/bin/checkov" "$venv/bin/checkov"
fi

# Check the tools start (cheap, catches a half-broken install before the stamp is written).
"$venv/bin/moto_server" --help >/dev/null
if [[ $mode == full ]]; then
  SAM_CLI_TELEMETRY=0 "$venv/bin/sam" --version
  "$venv/bin/cargo-lambda" lambda --version
  "$venv/bin/cfn-lint" --version
  "$venv/bin/checkov" --version
  "$venv/bin/python" -c 'import playwright.sync_api'
fi

# Exactly one stamp: the one for the set just installed (stale stamps from other pins go).
rm -f "$venv"/.installed-*
touch "$stamp"
echo "install-tools: done in $((SECONDS - start)) s; tools are in $venv/bin"
