# imagetrust — see README.md. Every tool is pinned and installed by this Makefile into
# $(TOOLS) (default ~/.cache/imagetrust/tools), keyed by version, so a rerun reuses it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

export GOTOOLCHAIN := local
export GOFLAGS := -buildvcs=false

GO        ?= go
TOOLS     ?= $(HOME)/.cache/imagetrust/tools
OPA_VERSION           := v1.17.1
GATOR_VERSION         := v3.23.1
GOLANGCI_LINT_VERSION := v2.15.0
# AWS KMS emulator for the verify KMS end-to-end test (keep in sync with localKMSVersion in
# provider/internal/verify/kms_test.go; the test skips, saying so, when it is not installed).
LOCAL_KMS_VERSION     := v0.0.0-20260228092603-2a5e92d09ab6
# Chart checks (make test-helm) and alert-rule tests (make test-monitoring). promtool is built
# from the prometheus module, whose v0.316.0 is the Prometheus 3.x release line.
HELM_VERSION          := v4.3.2
PROMTOOL_VERSION      := v0.316.0
# The real cosign CLIs the interop suite (make test-interop) signs and attests with (both build
# with the local Go toolchain).
COSIGN_V2_VERSION     := v2.6.5
COSIGN_V3_VERSION     := v3.1.3
FUZZTIME  ?= 30s
# Each one-pass JSON reader (held to encoding/json's result on the same bytes) in make fuzz.
FUZZTIME_READERS ?= 15s

OPA           := $(TOOLS)/opa-$(OPA_VERSION)/opa
GATOR         := $(TOOLS)/gator-$(GATOR_VERSION)/gator
GOLANGCI_LINT := $(TOOLS)/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint
LOCAL_KMS     := $(TOOLS)/local-kms-$(LOCAL_KMS_VERSION)/local-kms
HELM          := $(TOOLS)/helm-$(HELM_VERSION)/helm
PROMTOOL      := $(TOOLS)/promtool-$(PROMTOOL_VERSION)/promtool
COSIGN_V2     := $(TOOLS)/cosign-$(COSIGN_V2_VERSION)/cosign
COSIGN_V3     := $(TOOLS)/cosign-$(COSIGN_V3_VERSION)/cosign
# opa check/test need external_data declared (Gatekeeper registers it at runtime). The file
# sits in library/ but is not data: OPA_LIBRARY keeps it out of what opa loads.
CAPABILITIES  := library/capabilities.json
OPA_LIBRARY   := --ignore capabilities.json library

.PHONY: bench-rego tools-cosign test-interop chromium test test-go test-rego test-gator test-verification test-drift fuzz generate lint tools bench demo e2e e2e-tools tools-kms clean-tools test-helm test-monitoring tools-deploy

$(OPA):
	GOBIN=$(dir $@) $(GO) install github.com/open-policy-agent/opa@$(OPA_VERSION)
$(GATOR):
	GOBIN=$(dir $@) $(GO) install github.com/open-policy-agent/gatekeeper/v3/cmd/gator@$(GATOR_VERSION)
$(GOLANGCI_LINT):
	GOBIN=$(dir $@) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
$(LOCAL_KMS):
	cd /tmp && GOBIN=$(dir $@) $(GO) install github.com/nsmithuk/local-kms@$(LOCAL_KMS_VERSION)
$(HELM):
	cd /tmp && GOBIN=$(dir $@) $(GO) install -trimpath \
	  -ldflags '-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION) -X helm.sh/helm/v4/internal/version.gitTreeState=clean' \
	  helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
$(PROMTOOL):
	cd /tmp && GOBIN=$(dir $@) $(GO) install -trimpath \
	  -ldflags '-s -w -X github.com/prometheus/common/version.Version=$(PROMTOOL_VERSION)' \
	  github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)
$(COSIGN_V2):
	cd /tmp && GOBIN=$(dir $@) $(GO) install -trimpath -ldflags '-s -w' github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_V2_VERSION)
$(COSIGN_V3):
	cd /tmp && GOBIN=$(dir $@) $(GO) install -trimpath -ldflags '-s -w' github.com/sigstore/cosign/v3/cmd/cosign@$(COSIGN_V3_VERSION)

## tools-cosign: the cosign CLIs v2 and v3 (built from the module proxy), for make test-interop.
tools-cosign: $(COSIGN_V2) $(COSIGN_V3)

## test-interop: images signed and attested by the real cosign CLIs (both versions, every key
## type and format, registry with and without the referrers API) answered by the real provider
## over mTLS (provider/interop, tag interop). Not part of make test.
test-interop: tools-cosign
	COSIGN_V2=$(COSIGN_V2) COSIGN_V3=$(COSIGN_V3) $(GO) test -tags interop -count=1 -timeout 20m ./provider/interop/

## tools-kms: the AWS KMS emulator the verify KMS end-to-end test runs against.
tools-kms: $(LOCAL_KMS)

tools: $(OPA) $(GATOR)

## test: the tests (Go with -race, Rego, gator and imagetrust suites, template drift). CI also
## runs `make fuzz` (bounded fuzzing of the Rego parser against distribution/reference).
test: test-drift test-rego test-gator test-verification test-go

# The KMS end-to-end test (provider/internal/verify) runs against the pinned local-kms emulator.
test-go: $(LOCAL_KMS)
	$(GO) test -race -count=1 ./...

test-rego: $(OPA)
	$(OPA) fmt --fail --list library
	$(OPA) check --strict --capabilities $(CAPABILITIES) $(OPA_LIBRARY)
	$(OPA) test --capabilities $(CAPABILITIES) --coverage --threshold 90 --format=json $(OPA_LIBRARY) >/tmp/imagetrust-opa-cover.json || \
	  { $(OPA) test --capabilities $(CAPABILITIES) -v $(OPA_LIBRARY); exit 1; }
	$(OPA) test --capabilities $(CAPABILITIES) $(OPA_LIBRARY)

## test-gator: gator suites of the pure-Rego templates (gator verify takes one path).
test-gator: $(GATOR)
	$(GATOR) verify gator-tests/base/...
	$(GATOR) verify gator-tests/digest/...

## test-verification: Suites of the external-data templates (verification.yaml, security.yaml, attestations.yaml), answered from
## the provider fixtures beside them (gator cannot evaluate external_data).
VERIFY_BIN ?= $(CURDIR)/bin
test-verification:
	mkdir -p $(VERIFY_BIN)
	$(GO) build -o $(VERIFY_BIN)/imagetrust ./provider/cmd/imagetrust
	$(VERIFY_BIN)/imagetrust verify gator-tests/verification/...
	$(VERIFY_BIN)/imagetrust verify gator-tests/security/...
	$(VERIFY_BIN)/imagetrust verify gator-tests/attestations/...

## generate: render templates/*.yaml and their pages docs/templates/*.md from library/ (the
## pages show the constraints/ of each template's kind).
generate:
	$(GO) run ./provider/cmd/templategen -library library -out templates -docs docs/templates -constraints constraints

test-drift: generate
	@git diff --exit-code -- templates docs/templates || { echo "templates/ or docs/templates/ is stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- templates docs/templates)" || { echo "templates/ or docs/templates/ has untracked files: commit them"; exit 1; }

## fuzz: the Rego reference parser against distribution's, then the one-pass readers of
## signed statements and scan reports against encoding/json (-fuzzminimizetime keeps a target
## from spending its time minimising its first new input).
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzRegoParserMatchesDistribution$$' -fuzztime=$(FUZZTIME) ./provider/internal/policy
	$(GO) test -run='^$$' -fuzz='^FuzzValue$$' -fuzztime=$(FUZZTIME_READERS) -fuzzminimizetime=2s ./provider/internal/jsonpass
	$(GO) test -run='^$$' -fuzz='^FuzzScanEnvelope$$' -fuzztime=$(FUZZTIME_READERS) -fuzzminimizetime=2s ./provider/internal/verify
	$(GO) test -run='^$$' -fuzz='^FuzzScanStatement$$' -fuzztime=$(FUZZTIME_READERS) -fuzzminimizetime=2s ./provider/internal/verify
	$(GO) test -run='^$$' -fuzz='^FuzzCosignVulnScan$$' -fuzztime=$(FUZZTIME_READERS) -fuzzminimizetime=2s ./provider/internal/scan

lint: $(GOLANGCI_LINT) $(OPA)
	@test -z "$$(gofmt -l provider)" || { gofmt -l provider; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	$(OPA) fmt --fail --list library

## bench: the load generator (in-memory registry, real provider binary over mTLS with
## Gatekeeper's external-data client settings, HTTP/1.1; one JSON line per scenario) and the Go
## benchmarks of the hot paths. BENCH_FLAGS e.g. "-only growth" or "-only verify" (groups:
## matrix, growth, outage, verify, scan, latency, soak; the soak's phases: -soak-before,
## -soak-attack, -soak-after).
BENCH_DIR   ?= /tmp/imagetrust-bench
BENCH_FLAGS ?=
bench:
	mkdir -p $(BENCH_DIR)
	$(GO) build -o $(BENCH_DIR)/imagetrust-provider ./provider/cmd/imagetrust-provider
	$(GO) build -o $(BENCH_DIR)/imagetrust-bench ./provider/cmd/imagetrust-bench
	$(BENCH_DIR)/imagetrust-bench -provider $(BENCH_DIR)/imagetrust-provider $(BENCH_FLAGS)
	$(GO) test -run='^$$' -bench=. -benchmem ./provider/internal/cache ./provider/internal/batch ./provider/internal/imageref ./provider/internal/resolve
	# /v1/verify: cold (no answer cache; reads=all and signature-only) and warm, batch 1/100.
	$(GO) test -run='^$$' -bench=BenchmarkVerify -benchtime=2s ./provider/internal/verify
	# Protocol decode/encode, and Rego evaluation per Pod through the frameworks client.
	$(GO) test -run='^$$' -bench=. -benchmem ./provider/internal/server ./provider/internal/policy
	$(GO) test -run='^$$' -bench=BenchmarkVerificationTemplate -benchmem ./provider/internal/suite

## bench-rego: Rego CPU per Pod of base, digest, verification and security through the
## frameworks client (2,000 Pods of 7 images; external data answered in process), with the
## templates of REGO_BASELINE (a git revision, default main) measured beside them in the same
## run. docs/performance.md, "Rego cost per review".
REGO_BASELINE ?= main
bench-rego:
	d=$$(mktemp -d) && for t in base digest verification security; do git show $(REGO_BASELINE):templates/$$t.yaml > $$d/$$t.yaml; done && \
	  IMAGETRUST_REGO_BASELINE=$$d $(GO) test -run='^$$' -bench='^BenchmarkRegoCostPerPod$$' -benchtime=2000x ./provider/internal/suite; \
	  rc=$$?; rm -rf $$d; exit $$rc

## demo: the main job on embedded defaults: an in-memory registry with signed and unsigned
## sample images, the provider over mTLS, Gatekeeper's mutation system (manifests/ Assign
## mutators) and constraint framework (templates/, constraints/) on sample workloads; prints
## a decision table. Builds once, then runs in a few seconds, loopback only.
DEMO_DIR ?= /tmp/imagetrust-demo
demo:
	mkdir -p $(DEMO_DIR)
	$(GO) build -o $(DEMO_DIR)/imagetrust-demo ./provider/cmd/imagetrust-demo
	$(DEMO_DIR)/imagetrust-demo -repo .
	# Second step, imagetrust in CI: check finds the seed's non-compliant Deployment, pin fixes a tag-only one.
	$(GO) build -o $(DEMO_DIR)/imagetrust ./provider/cmd/imagetrust
	$(GO) build -o $(DEMO_DIR)/imagetrust-ci-demo ./provider/cmd/imagetrust-ci-demo
	$(DEMO_DIR)/imagetrust-ci-demo -imagetrust $(DEMO_DIR)/imagetrust -repo . -work $(DEMO_DIR)/ci

clean-tools:
	rm -rf $(TOOLS)

## chromium: Debian's chromium package (installed with apt-get when missing), for make e2e.
chromium:
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	@test -x $(CHROMIUM) || { echo "chromium: $(CHROMIUM) still missing after apt-get install chromium"; exit 1; }

## tools-deploy: helm and promtool at their pinned versions (built from the module proxy).
tools-deploy: $(HELM) $(PROMTOOL)

## test-helm: the chart (manifests/helm/imagetrust): helm lint --strict and helm template with
## default and full values (object lists, the rendered provider config through the provider's
## loader), values-schema failures, and parity with the kustomize base (provider/e2e TestChart*).
## kubectl (for kubectl kustomize) comes from the e2e tools.
KUBE_VERSION := $(shell sed -n 's/^KUBE_VERSION=//p' provider/e2e/tools/build.sh)
test-helm: $(HELM)
	TOOLS=$(TOOLS) provider/e2e/tools/build.sh kubectl
	HELM=$(HELM) KUBECTL=$(TOOLS)/kubectl-$(KUBE_VERSION)/kubectl IMAGETRUST_CHART_TESTS=1 \
	  $(GO) test -count=1 -run '^TestChart' -v ./provider/e2e/

## test-monitoring: promtool checks and unit tests of the alert rules (manifests/monitoring).
## The metrics they and the dashboard use are checked against a running provider by
## TestMonitoringMetricsExist (provider/e2e, part of make test).
test-monitoring: $(PROMTOOL)
	$(PROMTOOL) check rules manifests/monitoring/imagetrust.rules.yaml
	cd manifests/monitoring && $(PROMTOOL) test rules imagetrust.rules.test.yaml

## e2e-tools: build (once, then cached in $(TOOLS)) etcd, kube-apiserver, kubectl and the
## Gatekeeper manager at the versions pinned in provider/e2e/tools.
e2e-tools:
	TOOLS=$(TOOLS) provider/e2e/tools/build.sh

## e2e: real etcd + kube-apiserver + Gatekeeper + provider on loopback (provider/e2e, tag e2e);
## checks manifests/ and the Helm chart (server-side dry run), after test-helm and test-monitoring. E2E_REPORT names a file that
## collects what kubectl printed, timings and latencies.
E2E_REPORT ?= /tmp/imagetrust-e2e-report.txt
# The HTML report is checked in headless Chromium; its screenshot and DOM land in E2E_ARTIFACTS.
E2E_ARTIFACTS ?= /tmp/imagetrust-e2e-artifacts
CHROMIUM      ?= /usr/bin/chromium
e2e: e2e-tools test-helm test-monitoring chromium
	TOOLS=$(TOOLS) E2E_REPORT=$(E2E_REPORT) E2E_ARTIFACTS=$(E2E_ARTIFACTS) CHROMIUM=$(CHROMIUM) $(GO) test -tags e2e -count=1 -timeout 15m -v -run '^TestE2E$$' ./provider/e2e/

## image: the provider image and the imagetrust CLI image (the report CronJob's), without a
## container runtime: static binaries (CGO off, -trimpath) for IMAGE_PLATFORMS, assembled with
## go-containerregistry into an OCI index in $(IMAGE_DIR)/<program>/oci, with sbom.spdx.json and
## provenance.slsa.json beside it. IMAGE_PROGRAMS pairs each program (imagetrust-image -program)
## with its command in provider/cmd (provider/internal/image.Programs; a test holds them equal).
## SOURCE_DATE_EPOCH (default: the commit time) fixes every timestamp: same commit, same digest.
IMAGE_DIR         ?= /tmp/imagetrust-image
IMAGE_PROGRAMS    ?= provider=imagetrust-provider cli=imagetrust
IMAGE_PLATFORMS   ?= linux/amd64 linux/arm64
IMAGE_SOURCE      ?= https://github.com/imagetrust/imagetrust
IMAGE_REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
IMAGE_BUILDER_ID  ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
IMAGE_LDFLAGS     := -s -w -buildid= -X main.version=$(IMAGE_VERSION) -X main.revision=$(IMAGE_REVISION)
IMAGE             ?= provider
REGISTRY          ?=
KEY               ?=

.PHONY: image image-push image-sign
image:
	@test -n "$(SOURCE_DATE_EPOCH)" || { echo "SOURCE_DATE_EPOCH is empty and git log found no commit: set it"; exit 1; }
	set -e; for prog in $(IMAGE_PROGRAMS); do \
	  kind=$${prog%%=*}; cmd=$${prog#*=}; dir=$(IMAGE_DIR)/$$kind; bins=""; \
	  for p in $(IMAGE_PLATFORMS); do \
	    os=$${p%%/*}; arch=$${p#*/}; out=$$dir/bin/$$os-$${arch//\//-}/$$cmd; \
	    CGO_ENABLED=0 GOOS=$$os GOARCH=$${arch%%/*} $(GO) build -trimpath -ldflags '$(IMAGE_LDFLAGS)' -o $$out ./provider/cmd/$$cmd; \
	    bins="$$bins -binary $$p=$$out"; \
	  done; \
	  SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./provider/cmd/imagetrust-image build -program $$kind -out $$dir $$bins \
	    -source $(IMAGE_SOURCE) -version $(IMAGE_VERSION) -revision '$(IMAGE_REVISION)' $(if $(IMAGE_BUILDER_ID),-builder-id '$(IMAGE_BUILDER_ID)'); \
	done

## image-push: push $(IMAGE_DIR)/$(IMAGE)/oci (IMAGE=provider or cli) to REGISTRY=host/repo (tag:
## IMAGE_VERSION; docker config auth).
image-push:
	@test -n "$(REGISTRY)" || { echo "usage: make image-push REGISTRY=host/repo [IMAGE=provider|cli]"; exit 1; }
	$(GO) run ./provider/cmd/imagetrust-image push -dir $(IMAGE_DIR)/$(IMAGE) -to $(REGISTRY)

## image-sign: sign the pushed index and its platform manifests with KEY (PEM file, cosign key
## with COSIGN_PASSWORD, or awskms:// gcpkms:// azurekms:// hashivault://) and attach the SBOM
## and SLSA provenance as signed attestations (cosign tag scheme, no transparency log).
image-sign:
	@test -n "$(REGISTRY)" -a -n "$(KEY)" || { echo "usage: make image-sign REGISTRY=host/repo KEY=cosign.key|awskms://… [IMAGE=provider|cli]"; exit 1; }
	$(GO) run ./provider/cmd/imagetrust-image sign -dir $(IMAGE_DIR)/$(IMAGE) -repo $(REGISTRY) -key '$(KEY)'
