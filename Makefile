# The two commands that matter: `make run` (the whole flow locally) and `make test` (everything).
SHELL := bash
.DEFAULT_GOAL := help

VENV := .venv
TEST_TOOLS := $(VENV)/.test-tools
PACKAGE_TOOLS := $(VENV)/.package-tools
SAM_VENV := $(VENV)/sam
SAM_TOOLS := $(SAM_VENV)/.sam-tools
LAMBDAS := reset-password notifier
ARCH ?= arm64
EVENT ?= events/reset-password/valid.json
# `make invoke` runs the Lambda profile, which requires a secret; this one is public, for local use only.
DEV_SECRET := development-only-secret--never-deploy-this-value

FUZZ_SECONDS ?= 60
CARGO_FUZZ_VERSION := 0.13.2

.PHONY: help run test tools lint bench fuzz package deploy invoke replay clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

run: ## the whole flow on http://127.0.0.1:9000 (route, in-process bus, notifier, ./outbox); no AWS, no Docker
	cargo run --bin local

test: ## format, lint, template checks, and every test (starts moto, a real Medusa 2.21.2, PgBouncer; PostgreSQL if down)
	@# The tools install (mostly waiting on PyPI and compiling .pyc files) while clippy builds.
	$(MAKE) --no-print-directory -j3 --output-sync=target tools lint
	$(VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --template template.yaml
	tools/ensure-postgres
	tools/ensure-debian-packages pgbouncer openssl chromium
	tools/with-moto tools/with-medusa cargo test

lint: ## rustfmt and clippy, warnings as errors
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

bench: $(TEST_TOOLS) package ## cold start, RSS and zip size of the bootstraps; handler and rendering time; timing parity
	cargo build --release --bins --example hello_lambda
	tools/with-moto cargo bench --bench cold_start
	cargo bench --bench handler
	cargo bench --bench update
	tools/ensure-postgres
	MOTO_GC=off tools/with-moto cargo bench --bench parity

fuzz: ## fuzz the request parser for FUZZ_SECONDS (cargo-fuzz and libFuzzer; crashes land in fuzz/artifacts/)
	@test -x .tools/bin/cargo-fuzz || cargo install --locked --root .tools cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	# cargo-fuzz asks for nightly-only sanitizer flags; RUSTC_BOOTSTRAP lets the one stable toolchain accept them.
	cd fuzz && RUSTC_BOOTSTRAP=1 PATH="$(CURDIR)/.tools/bin:$$PATH" cargo fuzz run request_parser -- \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=9000

package: $(PACKAGE_TOOLS) ## lambda/<function>/bootstrap.zip in Cargo's target folder, for ARCH=arm64|x86_64, with cargo-lambda
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --$(subst x86_64,x86-64,$(ARCH)) \
	  --output-format zip $(addprefix --bin ,$(LAMBDAS))

deploy: $(SAM_TOOLS) $(PACKAGE_TOOLS) ## sam build && sam deploy --guided (needs AWS credentials)
	# SAM's rust-cargolambda build method is a beta feature; it calls cargo-lambda from the tool venv.
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --beta-features
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam deploy --guided

invoke: $(TEST_TOOLS) ## make invoke EVENT=events/...: a release bootstrap under a local Runtime API, AWS on moto
	cargo build --release --bins --example invoke
	@# Through Cargo, which knows where the target folder is; the example finds the bootstraps beside itself.
	tools/with-moto cargo run --quiet --release --example invoke -- "$(EVENT)"

# Development defaults for `make invoke`; values already in the environment win. DEVELOPMENT_MODE
# lets the Lambda-profile bootstraps accept the public secret and the http:// link.
invoke: export DEVELOPMENT_MODE ?= true
invoke: export JWT_SECRET ?= $(DEV_SECRET)
# Without a Medusa database the function must be told to skip the identity check, as a deployment would.
invoke: export SKIP_IDENTITY_CHECK ?= $(if $(MEDUSA_DATABASE_URL)$(MEDUSA_DATABASE_SECRET_ARN),false,true)
invoke: export MAIL_FROM ?= no-reply@shop.example.com
invoke: export RESET_URL_TEMPLATE_CUSTOMER ?= http://localhost:8000/reset-password?token={token}&email={email}

replay: ## send what waits in the notifier's dead-letter queue back through it (see README: Duplicates and replay)
	@test -n "$$DEAD_LETTER_QUEUE_URL" -a -n "$$NOTIFIER_FUNCTION" || { \
	  echo "usage: make replay DEAD_LETTER_QUEUE_URL=<the stack's NotifierDeadLetterQueueUrl> NOTIFIER_FUNCTION=<name or ARN>"; exit 2; }
	cargo run --release --bin replay-dead-letters

clean: ## remove build output, the tool venv and locally installed tools
	cargo clean
	rm -rf $(VENV) outbox .tools fuzz/target

$(VENV)/bin/python:
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	python3 -m venv $(VENV)

tools: $(TEST_TOOLS) $(SAM_TOOLS) $(PACKAGE_TOOLS)

$(TEST_TOOLS): tools/requirements-test.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

$(SAM_TOOLS): tools/requirements-sam.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@

# After the test tools: two pips must not install into one venv at once.
$(PACKAGE_TOOLS): tools/requirements-package.txt | $(VENV)/bin/python $(TEST_TOOLS)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r $<
	touch $@
