# caddy-tlsresume — developer entry points. `make demo` and `make test` are the
# two commands the README promises work on a fresh Debian machine with Go, git
# and make.

GO              ?= go
STATICCHECK_VER ?= v0.8.2
MODULES         := . integration bench
GOBIN           := $(shell $(GO) env GOPATH)/bin
# Integration tests build cmd/caddy and start real processes; give them room
# but stay well inside CI's 90 minutes.
TEST_TIMEOUT    ?= 30m
INTEG_TIMEOUT   ?= 45m

.PHONY: all build demo test test-unit test-integration deps lint bench fuzz clean

all: build

build:
	$(GO) build ./...
	$(GO) build -o bin/caddy ./cmd/caddy

## demo: Caddy serving an mTLS demo site on localhost with resumption on
demo:
	$(GO) run ./cmd/caddy tls-resume demo

## test: install what the tests need, then run every module's tests
test: deps test-unit test-integration

test-unit:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

test-integration:
	cd integration && $(GO) test -count=1 -timeout $(INTEG_TIMEOUT) ./...
	cd bench && $(GO) vet ./... && $(GO) test -count=1 -timeout 10m ./...

## deps: real redis-server, openssl, nginx and HAProxy from Debian's packages
deps:
	@./scripts/install-test-deps.sh

## lint: gofmt, go vet and staticcheck over all three modules
lint:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && $(GO) vet ./... && $(GOBIN)/staticcheck ./...) || exit 1; done

## bench: the comparative benchmark (see bench/README.md)
bench: deps
	cd bench && $(GO) run . $(BENCH_ARGS)

clean:
	rm -rf bin
