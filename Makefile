# anonlab — see README.md. `make run` opens the lab, `make test` runs what CI runs.
SHELL := /usr/bin/env bash
GO ?= go
BIN := bin/anonlab
KUBERNETES_VERSION ?= v1.37.2
BACKEND ?= auto
GOLANGCI_LINT_VERSION := v2.15.0
FUZZTIME ?= 20s
# make matrix's columns (cmd/anonlab/app.BehaviourVersions, kept equal by TestMatrixVersions).
MATRIX_VERSIONS ?= v1.20.2 v1.24.17 v1.28.15 v1.31.14 v1.32.13 v1.34.12 v1.37.2
# kind node image for e2e-kind; empty: the one kind-node-image builds.
NODE_IMAGE ?=
# e2e-framework's own flags, e.g. E2E_FLAGS='--assess anonymous-api --fail-fast'.
E2E_FLAGS ?=
# What runs the e2e suite; CI writes JUnit with GOTEST='gotestsum --junitfile e2e.xml --'.
GOTEST ?= $(GO) test

.PHONY: all build binaries cross run matrix test test-local unit e2e e2e-kind lint bench fuzz stress clean docker kind-node-image test-kind

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/anonlab

# kube-apiserver and etcd for the local backend: from the cache, the
# envtest release, or built from the Go module sources the first time
# (about 15 minutes on 2 cores; see --binaries-source).
binaries: build
	@$(BIN) binaries --kubernetes-version $(KUBERNETES_VERSION)

run: build binaries
	$(BIN) tui anonymous-auth --backend $(BACKEND) --kubernetes-version $(KUBERNETES_VERSION)

# docs/behaviour.md: every embedded scenario on the local backend for each
# of MATRIX_VERSIONS, one version at a time (binaries built once, under the
# lab's build lock, when not cached). Written when the run was complete,
# even with a failed expectation (then make fails, and so does
# TestBehaviourDoc until the scenario or the table is right).
matrix: build
	@$(BIN) matrix --all --backend local --lang en --kubernetes-versions $$(echo $(MATRIX_VERSIONS) | tr ' ' ,) > docs/behaviour.md.tmp; \
	  code=$$?; if [ $$code -le 1 ]; then mv docs/behaviour.md.tmp docs/behaviour.md; else rm -f docs/behaviour.md.tmp; fi; exit $$code

# Everything CI runs, each phase timed (hack/test.sh prints the table at
# the end): set-up (deps, binaries, cross, Docker, node image), the kind
# backend on real kind clusters (test-kind) side by side with the e2e
# suite on kind (e2e-kind), then test-local.
test:
	@bash hack/test.sh

# Unit tests, the article on a real kube-apiserver, and the e2e suite on
# the local backend (./e2e runs with its default flags).
test-local: build binaries
	$(GO) test -count=1 -timeout 40m $$($(GO) list ./... | grep -v '/steps/cluster/kind$$')

# anonlab and the local backend run on macOS too: every package builds and
# vets for darwin/arm64 and darwin/amd64.
cross:
	GOOS=darwin GOARCH=arm64 $(GO) vet ./...
	GOOS=darwin GOARCH=amd64 $(GO) vet ./...

# A Docker engine for the kind backend: installs docker.io (root, Debian),
# starts dockerd, and works around a VM that lacks a capability privileged
# containers need. Does nothing where Docker already works.
docker:
	@bash steps/cluster/kind/image/docker.sh

# A kind node image built with no registry (Debian packages, Go module
# sources), once per Kubernetes version; its tag is the last line printed.
kind-node-image: docker
	@bash steps/cluster/kind/image/build.sh $(KUBERNETES_VERSION)

# The kind backend's tests on real kind clusters: the backend's own
# walk-through, and the article through `anonlab run --backend kind`.
test-kind: docker kind-node-image
	ANONLAB_NODE_IMAGE=anonlab/node:$(KUBERNETES_VERSION) $(GO) test -count=1 -v -timeout 40m ./steps/cluster/kind/

# The e2e suite (sigs.k8s.io/e2e-framework): each scenario a feature, each
# step an assessment, on one cluster per run.
e2e: binaries
	$(GOTEST) -count=1 -v -timeout 20m ./e2e -args --backend local --kubernetes-version $(KUBERNETES_VERSION) $(E2E_FLAGS)

# The e2e suite on kind. With no NODE_IMAGE, the lab's own set-up with no
# registry (docker, kind-node-image); CI with a registry names an image.
e2e-kind: $(if $(NODE_IMAGE),,docker kind-node-image)
	$(GOTEST) -count=1 -v -timeout 40m ./e2e -args --backend kind --kubernetes-version $(KUBERNETES_VERSION) --node-image=$(NODE_IMAGE) $(E2E_FLAGS)

unit:
	$(GO) test -short ./...

lint:
	$(GO) vet ./...
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# Every benchmark with a docs/architecture.md budget, then a summary of the
# budgets (measured value, ok/OVER); fails when any is over or not measured
# (kind needs Docker: the node image is built first).
bench: build binaries
	@KUBERNETES_VERSION=$(KUBERNETES_VERSION) bash hack/bench.sh

# The article 10 times in a row on local; fails if anything is left or grew.
stress: build binaries
	steps/testdata/stress.sh $(BIN) 10

# docs/tui.png, the README's screenshot, from a real walkthrough on the
# local backend: tmux at 160x50, aha and a headless chromium (Debian
# packages tmux aha chromium fonts-dejavu-core; see docs/screenshot.sh).
.PHONY: screenshot
screenshot: build binaries
	docs/screenshot.sh $(BIN) docs/tui.png

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) ./steps/
	$(GO) test -run '^$$' -fuzz FuzzMatch -fuzztime $(FUZZTIME) ./steps/

clean:
	rm -rf bin
