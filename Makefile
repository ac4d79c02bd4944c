# Vigil — the two commands a newcomer needs:
#   make demo   build, start the local stack, run the narrated demo (exit 0 only if it all worked)
#   make test   every check and test (what CI runs)
# and a few more:
#   make up     keep the local stack running and print its URLs (Ctrl-C to stop)
#   make tools  install the pinned Python tools into .tools/ (moto, SAM CLI, cfn-lint, cargo-lambda,
#               schemathesis, openapi-spec-validator)
#   make lint   fmt, clippy and template lint only
#   make sam-build  build the Lambda bundles for arm64 with SAM + cargo-lambda (slow: ~10 min)

.PHONY: demo up test tools lint sam-build

demo:
	infra/scripts/install-tools.sh --moto-only
	cargo build -p vigil-local --bin vigil-local
	cargo run -q -p vigil-local --bin vigil-local -- demo

up:
	infra/scripts/install-tools.sh --moto-only
	cargo run -q -p vigil-local --bin vigil-local -- up

test:
	infra/scripts/test.sh

tools:
	infra/scripts/install-tools.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	infra/scripts/lint-template.sh

sam-build: tools
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/.tools/bin:$$PATH" .tools/bin/sam build --parallel
