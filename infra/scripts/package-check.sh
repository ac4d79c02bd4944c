#!/usr/bin/env bash
# package-check.sh — prove the deployed artifacts before they ship (`make package-check`):
#   1. installs the tools, the Lambda target and the arm64 emulator (qemu-user-static,
#      libc6-arm64-cross; apt-get, needs root or sudo) — infra/scripts/install-tools.sh --emulator
#   2. builds the bundles exactly as the deploy does — infra/scripts/sam-build.sh (`sam build`,
#      cargo-lambda, release, arm64; sizes printed and bounded)
#   3. runs every .aws-sam/build/<Function>/bootstrap under qemu-aarch64-static behind a local
#      Lambda Runtime API, with the environment template.yaml declares, against moto and the
#      simulators: each function handles real events of its triggers (infra/local/src/package_check)
#
# Usage: infra/scripts/package-check.sh [--no-build]     (--no-build: check the bundles already in
#        .aws-sam/build). Every function's output is kept in $PACKAGE_CHECK_LOGS (default
#        target/package-check-logs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "package-check.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

started=$SECONDS
infra/scripts/install-tools.sh --emulator
if [[ $build == 1 ]]; then
  infra/scripts/sam-build.sh
fi
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked -q -p vigil-local --bin package-check
logs="${PACKAGE_CHECK_LOGS:-$target/package-check-logs}"
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
infra/scripts/with-moto.sh "$target/debug/package-check" --build-dir "$PWD/.aws-sam/build" \
  --runner qemu-aarch64-static --logs "$logs"
echo "package-check: done in $((SECONDS - started)) s"
