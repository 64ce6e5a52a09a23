# Every target builds pure Go: cgo would switch kine to a C SQLite driver and
# invalidate the build cache of every package.
export CGO_ENABLED := 0

GO ?= go
# Tests against PostgreSQL use this server (trust authentication, database "test").
export WARREN_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: all build test lint fuzz bench-storage clean

all: build

build:
	$(GO) build -o bin/warren ./cmd/warren

lint:
	@unformatted="$$(gofmt -l cmd apiserver storage migrations tenancy bench test)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Packages run one at a time: storage's tests restart the PostgreSQL server that
# the other packages' tests use.
test: lint
	$(GO) test -p 1 -count=1 -timeout 25m ./...

# Runs every fuzz target for FUZZTIME each; `make test` runs their committed corpora.
FUZZTIME ?= 30s
FUZZ_TARGETS := $(shell grep -ho '^func Fuzz[A-Za-z]*' storage/*_test.go | cut -d' ' -f2)
fuzz:
	@for target in $(FUZZ_TARGETS); do \
		echo "$$target"; \
		$(GO) test ./storage/ -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

clean:
	rm -rf bin

# The storage comparison (warren, kine and etcd through storage.Interface); writes
# bench/results/storage.{json,svg}. BENCHFLAGS passes flags, e.g. -creates 2000.
bench-storage:
	$(GO) run ./bench/storage $(BENCHFLAGS)
