# Vigil — the two commands a newcomer needs:
#   make demo   build, start the local stack, run the narrated demo (exit 0 only if it all worked)
#   make test   every check and test (what CI runs)
# and a few more:
#   make up     load the demo's data into a local stack, keep it running and print its URLs, the
#               web console's address and tokens (Ctrl-C to stop)
#   make tools  install the pinned Python tools into .tools/ (moto, SAM CLI, cfn-lint, cargo-lambda,
#               schemathesis, openapi-spec-validator)
#   make lint   fmt, clippy and template lint only
#   make sam-build  build the Lambda bundles for arm64 exactly as `sam deploy` ships them (sam build,
#                   cargo-lambda, release), print their sizes and fail over budget (clean: see README)
#   make package-check  sam-build, then run every arm64 bundle under qemu-user behind a local Lambda
#                   Runtime API against moto and the simulators (CI runs it after make test)
#   make checkov    the template's security checks (skips listed in infra/checkov.yaml)

.PHONY: demo up test tools lint sam-build package-check checkov

demo:
	infra/scripts/install-tools.sh --moto-only
	cargo build -p vigil-local --bin vigil-local
	cargo run -q -p vigil-local --bin vigil-local -- demo

up:
	infra/scripts/install-tools.sh --moto-only
	cargo run -q -p vigil-local --bin vigil-local -- up --demo

test:
	infra/scripts/test.sh

tools:
	infra/scripts/install-tools.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	infra/scripts/lint-template.sh

sam-build: tools
	infra/scripts/sam-build.sh

package-check:
	infra/scripts/package-check.sh

checkov: tools
	infra/scripts/checkov.sh
