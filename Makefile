# Every target builds pure Go: cgo would switch kine to a C SQLite driver and
# invalidate the build cache of every package.
export CGO_ENABLED := 0

GO ?= go
# Tests against PostgreSQL use this server (trust authentication, database "test").
export WARREN_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: all build test lint generate verify-generated fuzz robustness bench-storage bench-api bench-crds bench-apis bench-shards bench-fairness bench-workspaces clean

all: build

build:
	$(GO) build -o bin/warren ./cmd/warren
	$(GO) build -o bin/kubectl-ws ./cmd/kubectl-ws
	$(GO) build -o bin/kubectl-create-workspace ./cmd/kubectl-create_workspace

lint: verify-generated
	@unformatted="$$(gofmt -l cmd apiserver storage migrations tenancy bench test)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# The OpenAPI definitions of the served built-in types: k8s.io/api ships none,
# and kcp's sdk ships its own under model names that differ from those of this
# Kubernetes version, so both are generated here, together. Regenerate after
# bumping k8s.io/api or github.com/kcp-dev/sdk; lint fails when they drift.
OPENAPI_PACKAGES := k8s.io/api/core/v1 k8s.io/api/rbac/v1 k8s.io/api/coordination/v1 \
	k8s.io/api/events/v1 k8s.io/api/authorization/v1 k8s.io/api/authentication/v1 \
	k8s.io/api/flowcontrol/v1 \
	k8s.io/api/autoscaling/v1 k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1 \
	k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime \
	k8s.io/apimachinery/pkg/version k8s.io/apimachinery/pkg/util/intstr \
	k8s.io/apimachinery/pkg/api/resource \
	github.com/kcp-dev/sdk/apis/tenancy/v1alpha1 github.com/kcp-dev/sdk/apis/core/v1alpha1 \
	github.com/kcp-dev/sdk/apis/apis/v1alpha1 github.com/kcp-dev/sdk/apis/apis/v1alpha2 \
	github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1
generate:
	$(GO) tool openapi-gen --output-dir apiserver/openapi \
		--output-pkg github.com/warren-dev/warren/apiserver/openapi \
		--output-file zz_generated.openapi.go --go-header-file /dev/null \
		--output-model-name-file zz_generated.model_name.go \
		$(addprefix --readonly-pkg ,$(OPENAPI_PACKAGES)) \
		--report-filename /dev/null $(OPENAPI_PACKAGES)

verify-generated: generate
	@git diff --exit-code --stat apiserver/openapi || \
		(echo "generated code is stale: run make generate and commit it"; exit 1)

# Packages run one at a time: storage's tests restart the PostgreSQL server that
# the other packages' tests use.
test: lint
	$(GO) test -p 1 -count=1 -timeout 25m ./...

# Runs every fuzz target for FUZZTIME each; `make test` runs their seed corpora.
FUZZTIME ?= 30s
FUZZ_TARGETS := $(shell grep -ro --include='*_test.go' '^func Fuzz[A-Za-z]*' storage apiserver | sed 's|/[^/]*_test.go:func |:|')
fuzz:
	@for f in $(FUZZ_TARGETS); do \
		pkg=$${f%%:*}; target=$${f##*:}; echo "$$pkg $$target"; \
		$(GO) test ./$$pkg/ -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# Runs every robustness scenario (test/robustness) for DURATION each, then prints
# scenario × dialect: operations, watch events, faults injected, violations.
# `make test` runs each for a few seconds. Violations are kept under
# test/robustness/results/.
DURATION ?= 10m
robustness:
	WARREN_ROBUSTNESS_DURATION=$(DURATION) $(GO) test -count=1 -v -timeout 0 -run TestRobustness ./test/robustness/

clean:
	rm -rf bin

# The storage comparison (warren, kine and etcd through storage.Interface); writes
# bench/results/storage.{json,svg}. BENCHFLAGS passes flags, e.g. -creates 2000.
bench-storage:
	$(GO) run ./bench/storage $(BENCHFLAGS)

# The API benchmark (warren on SQLite, PostgreSQL and etcd through the apiserver);
# writes bench/results/api.{json,svg,png} and api-server.json. BENCHFLAGS passes
# flags, e.g. -clusters 10.
bench-api:
	$(GO) run ./bench/api $(BENCHFLAGS)

# What CRDs cost per logical cluster: 1,000 clusters, each with its own CRD
# (distinct specs, then identical ones), and the server's memory as they grow;
# writes bench/results/crds-<storage>.json. BENCHFLAGS passes flags, e.g.
# -storage postgres.
bench-crds:
	$(GO) run ./bench/crds $(BENCHFLAGS)

# What API bindings cost: one export, N consumer workspaces binding it with two
# objects each, on PostgreSQL; samples memory, goroutines, bind latency and the
# export's virtual workspace at each checkpoint; writes
# bench/results/apis-<storage>[-unbound].{json,svg,png}. BENCHFLAGS passes
# flags, e.g. "-counts 1000,10000,100000", or "-bind=false" for bare
# workspaces, the baseline.
bench-apis:
	$(GO) run ./bench/apis $(BENCHFLAGS)

# What sharding costs: a root shard, a second shard and the front proxy, each a
# process, on PostgreSQL: a ConfigMap GET asked of a shard and through the
# proxy (its added latency and CPU per request), workspace creation under
# parents on one shard and on two, and the proxy's memory as workspaces grow
# (to -memory, 10,000 by default); writes bench/results/shards-<storage>.json.
bench-shards:
	$(GO) run ./bench/shards $(BENCHFLAGS)

# Fairness between tenants: a quiet client's latency alone and while another
# workspace's 50 clients flood the server, with API priority and fairness off,
# on by default, and on with concurrencies sized to the server's CPU (taskset:
# server on CPU 0, clients on CPU 1); writes bench/results/fairness.json.
bench-fairness:
	$(GO) run ./bench/fairness $(BENCHFLAGS)

# How warren scales with workspaces: 1,000 workspaces (one configmap each) on a
# warren of its own on SQLite, sampled every 100; writes
# bench/results/workspaces-<name>.{json,svg,png}. BENCHFLAGS replaces the
# flags, e.g. "-start postgres", or "-kubeconfig FILE -count 1000000" for a
# running warren.
bench-workspaces: BENCHFLAGS ?= -start sqlite
bench-workspaces:
	$(GO) run ./bench/workspaces $(BENCHFLAGS)
