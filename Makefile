# fastreq: `make` builds build/libfastreq.so and its header; `make test`
# runs every test (Go with -race, the fuzz seed corpus, the C tests under
# valgrind, the Python suite); `make bench` runs the benchmark.

GO      ?= go
PYTHON  ?= python3
CC      ?= gcc
BUILD   := build
LIB     := $(BUILD)/libfastreq.so
HEADER  := $(BUILD)/fastreq.h
SERVER  := $(BUILD)/fastreq-testserver
GOFILES := $(shell find core capi -name '*.go' -not -name '*_test.go') go.mod go.sum
CFILES  := $(shell find capi -name '*.c' -o -name '*.h')
CFLAGS  ?= -O2 -g -Wall -Wextra -Werror -std=c11

.PHONY: all lib test test-go test-fuzz test-c check-mem test-python bench clean

all: lib

lib: $(LIB) $(HEADER)

$(LIB): $(GOFILES) $(CFILES) include/fastreq.h
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -ldflags="-s -w" -buildmode=c-shared -o $@ ./capi
	@rm -f $(BUILD)/libfastreq.h  # cgo's generated header is internal; include/fastreq.h is the contract

$(HEADER): include/fastreq.h
	@mkdir -p $(BUILD)
	cp $< $@

$(SERVER): $(shell find tests/testserver -name '*.go') go.mod go.sum
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./tests/testserver/cmd/fastreq-testserver

test: test-go test-c test-python

test-go:
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

# A short coverage-guided run of each fuzz target, on top of the seed
# corpus that `go test` already runs.
test-fuzz:
	$(GO) test -run '^$$' -fuzz FuzzClientConfig -fuzztime 15s -fuzzminimizetime 200x ./capi/
	$(GO) test -run '^$$' -fuzz FuzzRequestConfig -fuzztime 15s -fuzzminimizetime 200x ./capi/

test-c check-mem: lib $(SERVER)
	$(MAKE) -C tests/c run LIB_DIR=$(CURDIR)/$(BUILD) SERVER=$(CURDIR)/$(SERVER)

test-python: lib $(SERVER)
	FASTREQ_LIBRARY=$(CURDIR)/$(LIB) FASTREQ_TESTSERVER=$(CURDIR)/$(SERVER) PYTHONPATH=$(CURDIR)/python \
		$(PYTHON) -m pytest -q tests/python

# Long and hostile runs with bounds (tests/soak/soak.py); not part of
# `make test`. SOAK_ARGS picks scenarios, e.g. SOAK_ARGS="a e".
.PHONY: soak
soak: lib $(SERVER)
	FASTREQ_LIBRARY=$${FASTREQ_LIBRARY:-$(CURDIR)/$(LIB)} FASTREQ_TESTSERVER=$${FASTREQ_TESTSERVER:-$(CURDIR)/$(SERVER)} \
		PYTHONPATH=$(CURDIR)/python $(PYTHON) tests/soak/soak.py $(SOAK_ARGS)

bench: lib
	$(PYTHON) tests/bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)
