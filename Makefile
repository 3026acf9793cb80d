# fastreq: `make` builds build/libfastreq.so and its header; `make test`
# runs every test (Go with -race, the fuzz seed corpus, the C tests under
# valgrind, the Python suite); `make bench` runs the benchmark.

GO      ?= go
PYTHON  ?= python3
CC      ?= gcc
BUILD   := build
# The library's SONAME carries the ABI version of include/fastreq.h, so a
# program linked against one ABI never loads another.
ABI     := $(shell sed -n 's/^\#define FASTREQ_ABI_VERSION \([0-9][0-9]*\).*/\1/p' include/fastreq.h)
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' python/fastreq/_version.py)
SONAME  := libfastreq.so.$(ABI)
REALLIB := $(BUILD)/$(SONAME)
LIB     := $(BUILD)/libfastreq.so
HEADER  := $(BUILD)/fastreq.h
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SERVER  := $(BUILD)/fastreq-testserver
GOFILES := $(shell find core capi -name '*.go' -not -name '*_test.go') go.mod go.sum
CFILES  := $(shell find capi -name '*.c' -o -name '*.h')
CFLAGS  ?= -O2 -g -Wall -Wextra -Werror -std=c11

.PHONY: all lib install uninstall serve test test-go test-fuzz test-c check-mem test-install test-python bench clean

all: lib

lib: $(LIB) $(HEADER)

$(REALLIB): $(GOFILES) $(CFILES) include/fastreq.h
	@mkdir -p $(BUILD)
	$(GO) build -trimpath -ldflags="-s -w -extldflags=-Wl,-soname,$(SONAME)" -buildmode=c-shared -o $@ ./capi
	@rm -f $(BUILD)/libfastreq.so.h  # cgo's generated header is internal; include/fastreq.h is the contract

$(LIB): $(REALLIB)
	ln -sf $(SONAME) $@

# C users: the library (by its SONAME, plus the libfastreq.so link to
# build against), the header and a pkg-config file. DESTDIR stages it.
install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(REALLIB) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfastreq.so
	install -m 644 include/fastreq.h $(DESTDIR)$(INCLUDEDIR)/fastreq.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(VERSION)|' \
		include/fastreq.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/fastreq.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libfastreq.so \
		$(DESTDIR)$(INCLUDEDIR)/fastreq.h $(DESTDIR)$(LIBDIR)/pkgconfig/fastreq.pc

$(HEADER): include/fastreq.h
	@mkdir -p $(BUILD)
	cp $< $@

$(SERVER): $(shell find tests/testserver -name '*.go') go.mod go.sum
	@mkdir -p $(BUILD)
	$(GO) build -o $@ ./tests/testserver/cmd/fastreq-testserver

# The servers the README's examples use, on their ports: go-httpbin and
# the misbehaving endpoints on 127.0.0.1:8080, an HTTP proxy on :3128 and a
# SOCKS5 proxy (user:pass) on :1080. Ctrl-C stops them.
serve: $(SERVER)
	$(SERVER) -http 127.0.0.1:8080 -proxy 127.0.0.1:3128 -socks5 127.0.0.1:1080 -socks5-auth user:pass

test: test-go test-c test-python

# capi's tests and their cgo hooks (capi/testhooks.go) build only with the
# fastreqtest tag, so that the library never contains them.
test-go:
	$(GO) vet -tags fastreqtest ./...
	$(GO) test -race -count=1 -tags fastreqtest ./...

# A short coverage-guided run of each fuzz target, on top of the seed
# corpus that `go test` already runs.
test-fuzz:
	$(GO) test -tags fastreqtest -run '^$$' -fuzz FuzzClientConfig -fuzztime 15s -fuzzminimizetime 200x ./capi/
	$(GO) test -tags fastreqtest -run '^$$' -fuzz FuzzRequestConfig -fuzztime 15s -fuzzminimizetime 200x ./capi/

test-c check-mem: lib $(SERVER) test-install
	$(MAKE) -C tests/c run LIB_DIR=$(CURDIR)/$(BUILD) SERVER=$(CURDIR)/$(SERVER)

# `make install` into a scratch prefix, then a program built with
# pkg-config's flags loads the library by its SONAME.
test-install: lib
	tests/c/install_check.sh "$(MAKE)" "$(SONAME)" "$(ABI)"

test-python: lib $(SERVER)
	FASTREQ_LIBRARY=$(CURDIR)/$(LIB) FASTREQ_TESTSERVER=$(CURDIR)/$(SERVER) PYTHONPATH=$(CURDIR)/python \
		$(PYTHON) -m pytest -q tests/python

# Long and hostile runs with bounds (tests/soak/soak.py); not part of
# `make test`. SOAK_ARGS picks scenarios, e.g. SOAK_ARGS="a e".
.PHONY: soak
soak: lib $(SERVER)
	FASTREQ_LIBRARY=$${FASTREQ_LIBRARY:-$(CURDIR)/$(LIB)} FASTREQ_TESTSERVER=$${FASTREQ_TESTSERVER:-$(CURDIR)/$(SERVER)} \
		PYTHONPATH=$(CURDIR)/python $(PYTHON) tests/soak/soak.py $(SOAK_ARGS)

# A wheel for PyPI: sdist, then from it a wheel linked against glibc 2.17
# and tagged manylinux by auditwheel, into dist/ (python/_backend/make-wheel.sh).
.PHONY: wheel
wheel:
	PYTHON=$(PYTHON) FASTREQ_GO=$(GO) bash python/_backend/make-wheel.sh

bench: lib
	$(PYTHON) tests/bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(BUILD)
