# The commands a newcomer and CI rely on: run, test, stack, stack-down, lint,
# bench, chaos. Each installs or builds what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
DATA_DIR ?= $(CURDIR)/.data
export DATA_DIR
BIN := $(CURDIR)/bin
TOOLS := $(DATA_DIR)/tools
# Load the addresses `make stack` chose (PG_URL may differ per machine).
WITH_STACK_ENV := set -a; . $(DATA_DIR)/stack.env; set +a;
GO_TEST_FLAGS ?= -count=1 -timeout 20m

STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0

.PHONY: all build run test test-unit stack stack-down stack-status lint bench chaos fuzz clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## build the worker and the starter CLI into bin/
	go build -o $(BIN)/worker ./worker
	go build -o $(BIN)/starter ./starter

stack: ## start PostgreSQL, slapd, the SCIM demo app and Temporal+UI (idempotent)
	deployments/stack.sh up

stack-down: ## stop the services this project started
	deployments/stack.sh down

stack-status: ## show which services are up
	deployments/stack.sh status

run: stack build ## bring up the stack, start the worker and hire one demo person
	$(WITH_STACK_ENV) deployments/demo/run.sh

test: stack ## unit tests plus integration tests against the real stack
	$(WITH_STACK_ENV) go test $(GO_TEST_FLAGS) ./...
	# The launcher is its own module; -trimpath reuses the build `make stack` made.
	cd deployments/temporal && go test -trimpath $(GO_TEST_FLAGS) ./...

test-unit: ## tests that need no server (workflows, policy, parsing)
	go test $(GO_TEST_FLAGS) ./workflows/... ./policy/... ./internal/hr/... ./internal/config/...

lint: ## go vet, staticcheck and Temporal's workflowcheck
	go vet ./...
	cd deployments/temporal && go vet ./...
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	GOBIN=$(TOOLS) go install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)
	$(TOOLS)/staticcheck ./...
	$(TOOLS)/workflowcheck ./workflows/...

BENCH_ARGS ?=
bench: stack ## revocation latency and bulk onboarding against Temporal's floor (writes bench/results/latest.json)
	$(WITH_STACK_ENV) go run ./bench $(BENCH_ARGS)

# Every Fuzz function of the module's packages, found by name, so a new
# target is fuzzed without editing this file. Needs no server.
FUZZTIME ?= 10s
fuzz: ## short fuzz run of every fuzz target (FUZZTIME each, default 10s); finds land in testdata/fuzz
	@for dir in $$(go list -f '{{.Dir}}' ./...); do \
	  for fn in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$$dir"/*_test.go 2>/dev/null | cut -d' ' -f2); do \
	    echo "== $$fn (./$${dir#$(CURDIR)/}, $(FUZZTIME))"; \
	    go test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) "./$${dir#$(CURDIR)/}"; \
	  done; \
	done

CHAOS_ARGS ?=
chaos: stack ## fault tests: hires, moves and leavers under worker kills, a Temporal restart, outages and a partial failure (CHAOS_ARGS="--hires 100 ...")
	$(WITH_STACK_ENV) go run ./chaos $(CHAOS_ARGS)

clean: ## remove build output (keeps .data; use stack-down first)
	rm -rf $(BIN)
