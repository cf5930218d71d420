# Trusted Delivery: build, test, demo and deployment entry points.
# `make help` lists the targets. Everything runs with Go, gcc, git and make:
# the tools (kube-apiserver, etcd, kubectl, controller-gen, Flux
# kustomize-controller) are built from pinned Go modules into bin/.

# Image of the manager for docker-build and deploy.
IMG ?= controller:latest
# Container engine for docker-build and docker-push (docker or podman).
CONTAINER_TOOL ?= docker

GO ?= go
LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
KUBECTL ?= $(LOCALBIN)/kubectl

# Packages that carry controller-gen markers. A directory is skipped until it
# exists, because controller-gen fails on a path that does not.
MARKER_PATHS := $(foreach dir,api controllers internal,$(if $(wildcard $(dir)),paths=./$(dir)/...))

# Fail a recipe when any command of a pipeline fails.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

.DEFAULT_GOAL := all

##@ General

.PHONY: help
help: ## List the targets and what they do.
	@awk -F ':.*## ' ' \
		/^##@/ { printf "\n%s\n", substr($$0, 5) } \
		/^[a-zA-Z0-9_-]+:.*## / { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types (zz_generated.deepcopy.go).
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs, the manager ClusterRole and the webhook configurations from markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd webhook $(MARKER_PATHS) \
		output:crd:artifacts:config=config/crd/bases \
		output:rbac:artifacts:config=config/rbac \
		output:webhook:artifacts:config=config/webhook

.PHONY: fmt
fmt: ## Format the Go code with go fmt.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Run go vet, on the e2e suite as well.
	$(GO) vet -tags e2e ./...

.PHONY: verify
verify: generate manifests ## Fail when the generated files in api/ and config/ are not committed.
	@changes="$$(git status --porcelain -- api config)"; \
	if [[ -n "$${changes}" ]]; then \
		echo "verify: api/ or config/ differ from the last commit after make generate manifests:" >&2; \
		echo "$${changes}" >&2; \
		echo "verify: commit these files (regenerate them with make generate manifests if you edited api/)." >&2; \
		exit 1; \
	fi

.PHONY: test
test: tools flux verify ## Run the unit and envtest suites, then the e2e suite, on the control plane in bin/.
	KUBEBUILDER_ASSETS=$(LOCALBIN) $(GO) test ./... -count=1
	KUBEBUILDER_ASSETS=$(LOCALBIN) $(GO) test -tags e2e ./test/e2e/... -count=1

.PHONY: bench
bench: tools ## Run the engine benchmarks and the audit benchmark (not part of make test; docs/benchmarks.md).
	KUBEBUILDER_ASSETS=$(LOCALBIN) $(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./test/bench
	KUBEBUILDER_ASSETS=$(LOCALBIN) $(GO) run ./test/bench/audit -objects 1000,10000

##@ Build

.PHONY: all
all: build ## Same as build; the default target.

.PHONY: build
build: ## Build bin/manager, and bin/tdctl when cmd/tdctl exists.
	$(GO) build -o $(LOCALBIN)/manager .
	@if [[ -d cmd/tdctl ]]; then \
		echo "$(GO) build -o $(LOCALBIN)/tdctl ./cmd/tdctl"; \
		$(GO) build -o $(LOCALBIN)/tdctl ./cmd/tdctl; \
	fi

.PHONY: localcluster
localcluster: ## Build bin/localcluster, the local control plane of the demo.
	$(GO) build -o $(LOCALBIN)/localcluster ./hack/localcluster

.PHONY: run
run: ## Run the manager from source against the cluster of $KUBECONFIG; pass flags in ARGS.
	$(GO) run . $(ARGS)

.PHONY: docker-build
docker-build: ## Build the manager image IMG; needs a Docker engine (or CONTAINER_TOOL=podman).
	$(CONTAINER_TOOL) build -t $(IMG) .

.PHONY: docker-push
docker-push: ## Push the manager image IMG.
	$(CONTAINER_TOOL) push $(IMG)

##@ Tools

.PHONY: tools
tools: ## Build kube-apiserver, etcd, kubectl and controller-gen into bin/, each only when missing.
	hack/build-tools.sh

$(CONTROLLER_GEN):
	hack/build-tools.sh controller-gen

$(KUBECTL):
	hack/build-tools.sh kubectl

.PHONY: flux
flux: flux-crds ## Build bin/kustomize-controller (when missing) and generate the Flux CRDs.
	hack/build-flux.sh

.PHONY: flux-crds
flux-crds: $(CONTROLLER_GEN) ## Generate the Flux CRDs that envtest installs into test/crds/flux.
	hack/flux-crds.sh

##@ Demo

.PHONY: demo
demo: ## Run the operator on a local control plane with config/samples; DEMO_DETACH=1 returns at once.
	hack/demo.sh

.PHONY: demo-stop
demo-stop: ## Stop the demo's manager and control plane.
	hack/demo-stop.sh

##@ Deployment

.PHONY: deploy
deploy: $(KUBECTL) ## Apply config/default with the manager image IMG to the cluster of $KUBECONFIG.
	@# A temporary overlay sets the image, so that config/ stays unchanged.
	@# kustomize accepts only a relative path to a base.
	@overlay="$$(mktemp -d)"; \
	trap 'rm -rf "$${overlay}"' EXIT; \
	{ \
		echo "apiVersion: kustomize.config.k8s.io/v1beta1"; \
		echo "kind: Kustomization"; \
		echo "resources:"; \
		echo "- $$(realpath --relative-to="$${overlay}" config/default)"; \
		echo "images:"; \
		echo "- name: controller"; \
		echo "  newName: $(IMG)"; \
	} > "$${overlay}/kustomization.yaml"; \
	$(KUBECTL) kustomize "$${overlay}" | $(KUBECTL) apply -f -

.PHONY: undeploy
undeploy: $(KUBECTL) ## Delete what deploy applied, CRDs included: every Workspace and Policy goes with them.
	$(KUBECTL) kustomize config/default | $(KUBECTL) delete --ignore-not-found -f -
