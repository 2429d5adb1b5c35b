# driftless — `make demo` runs the platform with the examples; `make test` runs every test.
# Both set up the machine first (Debian, as root): packages, Go, pinned Consul, nats-server, staticcheck.

SHELL       := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOSRC       := $(shell find . -name '*.go' -not -path './tools/*' -not -path './.demo/*' 2>/dev/null) go.mod go.sum
DEMO_DIR    ?= $(CURDIR)/.demo

.PHONY: all setup stacks build examples test test-unit lint demo bench clean

all: build

## setup: Debian packages (a JDK among them), Go, Consul (pinned, from its Go module), nats-server (the
## version in go.mod), staticcheck, the bookworm stack and its JRE layer
setup: .setup-host bin/consul bin/nats-server bin/staticcheck stacks

.setup-host:
	@bash scripts/setup.sh

## stacks: the bookworm root file system for the node and python buildpacks (debootstrap, cached),
## and the JRE layer over it for the java buildpack (openjdk-17-jre-headless, cached)
stacks:
	@bash scripts/build-stack.sh
	@bash scripts/build-stack.sh --jre

bin/consul: tools/consul/go.mod tools/consul/go.sum tools/consul/main.go
	@echo "building pinned consul ($$(awk '/hashicorp\/consul v/{print $$2; exit}' tools/consul/go.mod)) into bin/consul (a few minutes the first time)"
	cd tools/consul && $(GO) build -trimpath -o ../../bin/consul .

bin/nats-server: go.mod go.sum
	@echo "building nats-server ($$(awk '/nats-io\/nats-server\/v2 v/{print $$2; exit}' go.mod), the version in go.mod) into bin/nats-server"
	$(GO) build -trimpath -o bin/nats-server github.com/nats-io/nats-server/v2

bin/staticcheck:
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)

## build: the driftless binary and driftless-static (the static buildpack's server, beside it)
build: bin/driftless bin/driftless-static

bin/driftless: $(GOSRC)
	$(GO) build -o bin/driftless ./cmd/driftless

bin/driftless-static: cmd/driftless-static/main.go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./cmd/driftless-static

## examples: build the example apps that need building (static binaries, the Java app's JAR)
examples: examples/apps/hello/hello examples/apps/notes/notes examples/apps/java-hello/target/app.jar

examples/apps/hello/hello: examples/apps/hello/main.go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./examples/apps/hello

examples/apps/notes/notes: examples/apps/notes/main.go go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $@ ./examples/apps/notes

examples/apps/java-hello/target/app.jar: examples/apps/java-hello/build.sh $(shell find examples/apps/java-hello/src -name '*.java')
	sh examples/apps/java-hello/build.sh

## lint: gofmt, go vet, staticcheck
lint: bin/staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^tools/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	bin/staticcheck ./...

## test: set-up, build, lint, then every test against real containerd, Consul, NATS and git
test: setup build examples lint
	$(GO) test -count=1 -timeout 45m ./...
	bin/driftless policy test examples/policies

## test-unit: the fast tests that need no root or engines
test-unit:
	$(GO) test -count=1 ./model/... ./manifests/... ./bus/... ./reconciler/plan/... ./reconciler/decide/... \
		./reconciler/store/... ./reconciler/executor/... ./agents/ ./router/route/... ./router/wire/... \
		./router/registry/... ./cmd/driftless/... ./policies/...
	$(GO) test -count=1 -run 'TestApply|TestConverge|TestRollBack|TestFailedActions' ./reconciler/

## demo: set-up, then the platform running examples/ (Ctrl-C stops it; apps keep running until
## `bin/driftless dev --down --data .demo/platform` removes them)
demo: setup build examples
	@bash scripts/demo.sh "$(DEMO_DIR)"

## bench: the benchmarks written up in docs/benchmarks.md
bench: setup build examples
	$(GO) test -run '^$$' -bench . -benchtime 3x ./reconciler/plan/
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./router/proxy ./router/route
	bash bench/deploy.sh
	bash bench/recovery.sh
	bash bench/staging.sh

clean:
	rm -rf bin/driftless examples/apps/hello/hello examples/apps/notes/notes examples/apps/java-hello/target
