#!/usr/bin/env bash
# Cold start of each function beside a minimal Rust Lambda (lambda_runtime + aws_config::load +
# one DynamoDB client), measured side by side by infra/local/src/bin/cold-start-bench.rs.
#
#   infra/scripts/cold-start-bench.sh                      # release builds, 20 starts each
#   infra/scripts/cold-start-bench.sh --profile dev       # debug builds (quicker to build; slower to start)
#   infra/scripts/cold-start-bench.sh --functions "audit-poller webhook-receiver" -- --runs 50
#
# Options: --profile release|dev (release: the workspace's Lambda profile, thin LTO and one
# codegen unit: several minutes per binary on 2 cores), --functions "NAMES" (default: every
# function under functions/), --no-build (bench what is already built). Everything after `--`
# goes to the bench (--runs N, --warmup N, --aws-endpoint URL, --timeout-ms N, --logs DIR).
# Prints the build times and the bench's table; exits non-zero when a build or a start fails.
# The bench itself is built in the dev profile: it only serves a few local HTTP requests.
set -euo pipefail
cd "$(dirname "$0")/../.."

profile=release
functions="audit-poller alert-evaluator webhook-receiver ticket-dispatcher config-api"
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --functions) functions="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "cold-start-bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release) dir=release ;;
  dev) dir=debug ;;
  *) echo "cold-start-bench.sh: --profile release or dev" >&2; exit 2 ;;
esac
target="${CARGO_TARGET_DIR:-target}"

if [ "$build" = 1 ]; then
  packages=(-p vigil-minimal-lambda)
  for f in $functions; do packages+=(-p "$f"); done
  start=$SECONDS
  cargo build --profile "$profile" "${packages[@]}" --bins
  echo "built baseline + [$functions] ($profile): $((SECONDS - start)) s"
  start=$SECONDS
  cargo build -p vigil-local --bin cold-start-bench
  echo "built cold-start-bench (dev): $((SECONDS - start)) s"
fi

# Bench copies, so that another build into the same target directory cannot swap a binary
# between two starts.
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
cp "$target/debug/cold-start-bench" "$target/$dir/minimal-lambda" "$bin/"
args=()
for f in $functions; do
  cp "$target/$dir/$f" "$bin/"
  args+=("$f=$bin/$f")
done
ls -l "$bin" | awk 'NR > 1 { printf "binary size %s: %.1f MB\n", $9, $5 / 1048576 }'
"$bin/cold-start-bench" --label "$profile" --baseline "$bin/minimal-lambda" "${args[@]}" "$@"
