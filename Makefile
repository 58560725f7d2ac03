# caddy-tlsresume — developer entry points. `make demo` and `make test` are the
# two commands the README promises work on a fresh Debian machine with Go, git
# and make.

GO              ?= go
STATICCHECK_VER ?= v0.8.2
MODULES         := . integration bench
GOBIN           := $(shell $(GO) env GOPATH)/bin
# Per-package `go test -timeout`s. The whole of `make test` takes a few
# minutes on 2 cores; these bounds only stop a hung test long before CI's
# 90 minutes.
TEST_TIMEOUT    ?= 20m
INTEG_TIMEOUT   ?= 30m
BENCH_TIMEOUT   ?= 10m
# Integration packages run as parallel processes (each with its own ports,
# Caddy processes and redis-server); two at a time suits a 2-core machine.
INTEG_PARALLEL  ?= 2
# `make fuzz`: time per fuzz target, and workers per target.
FUZZTIME        ?= 60s
FUZZPARALLEL    ?= 2
# Extra flags for `make soak` (see bench/README.md), e.g. SOAK_ARGS='-duration 2m'.
SOAK_ARGS       ?=
# Extra flags for `make demo`, e.g. DEMO_ARGS='--listen localhost:9443'.
DEMO_ARGS       ?=

# go_packages prints the packages of the module in directory $(1) (empty for
# a module that has no Go packages yet).
go_packages = $(shell cd $(1) && $(GO) list ./... 2>/dev/null)

.PHONY: all build demo test test-unit test-integration test-bench deps lint bench fuzz soak clean

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/caddy ./cmd/caddy

## demo: Caddy serving an mTLS demo site on localhost with resumption on
demo:
	$(GO) run ./cmd/caddy tls-resume demo $(DEMO_ARGS)

## test: install what the tests need, then run every module's tests
test: deps test-unit test-integration test-bench

test-unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-integration:
	cd integration && $(GO) test -count=1 -p $(INTEG_PARALLEL) -timeout $(INTEG_TIMEOUT) ./...

test-bench:
	@if [ -z "$(call go_packages,bench)" ]; then echo "bench: no Go packages yet"; else \
		cd bench && $(GO) vet ./... && $(GO) test -count=1 -timeout $(BENCH_TIMEOUT) ./...; fi

## deps: real redis-server, openssl, curl, nginx and HAProxy from Debian's packages
deps:
	@./scripts/install-test-deps.sh

## lint: gofmt, go vet and staticcheck over all three modules
lint:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do \
		if [ -z "$$(cd $$m && $(GO) list ./... 2>/dev/null)" ]; then echo "== $$m: no Go packages yet"; continue; fi; \
		echo "== $$m"; (cd $$m && $(GO) vet ./... && $(GOBIN)/staticcheck ./...) || exit 1; \
	done

## bench: the comparative benchmark (see bench/README.md)
bench: deps
	cd bench && $(GO) run . $(BENCH_ARGS)

## fuzz: every fuzz target of the three modules for FUZZTIME each, one at a time
fuzz:
	FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) ./scripts/fuzz.sh

## soak: 4 Caddy nodes under mixed load and faults for 10 minutes; writes RELIABILITY.md
soak: deps
	cd bench && $(GO) run . soak $(SOAK_ARGS)

clean:
	rm -rf bin integration/.build fuzz-results
