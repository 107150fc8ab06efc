# toolzz -- build, demo, tests. `make demo` and `make test` work on a fresh
# Debian 12 machine as root: they install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD    ?= build
CC       ?= cc
WARN     := -std=c99 -Wall -Wextra -Wshadow -Wstrict-prototypes -Werror
OPT      ?= -O2 -g
SRC      := $(wildcard src/*.c)
HDR      := $(wildcard src/*.h)
CURL_LIBS := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

# Lua flavours: name -> interpreter, include flags (from pkg-config).
LUAS     ?= $(shell for l in lua5.4 lua5.1 luajit; do command -v $$l >/dev/null && echo $$l; done)
inc_lua5.4 := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
inc_lua5.1 := $(shell pkg-config --cflags lua5.1 2>/dev/null || echo -I/usr/include/lua5.1)
inc_luajit := $(shell pkg-config --cflags luajit 2>/dev/null || echo -I/usr/include/luajit-2.1)

CORES    := $(foreach l,$(LUAS),$(BUILD)/$(l)/toolzz/core.so)

.PHONY: build deps demo-deps demo test check lint unit install-test valgrind server-start server-stop \
        bench fuzz sanitize clean tzdata dist types

build: $(CORES)

$(BUILD)/%/toolzz/core.so: $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(OPT) $(CFLAGS) -fPIC -shared -fvisibility=hidden $(inc_$*) $(SRC) -o $@ $(LDFLAGS) $(CURL_LIBS)

deps:
	@tools/install-deps test

demo-deps:
	@tools/install-deps demo

tzdata:
	lua5.4 tools/gen-tzdata.lua

# types/library/toolzz.lua from the catalogue and the schemas (make test fails when it differs)
types: build
	lua5.4 tools/gen-types.lua

server-start:
	@spec/server/ctl start

server-stop:
	@spec/server/ctl stop

demo: demo-deps
	@$(MAKE) --no-print-directory build LUAS=lua5.4
	@spec/server/ctl start
	@eval "$$(BUILD=$(BUILD) spec/server/ctl env --client)"; lua5.4 examples/demo.lua
	@BUILD=$(BUILD) tools/demo-cli
	@echo; echo 'The stand-in keeps running (spec/server/ctl stop). To use it from this shell (README "Quick start"):'
	@echo '  eval "$$(spec/server/ctl env --client)"'

test: deps
	@tools/run-tests

bench: deps
	@TOOLZZ_BENCH_DEPS=1 tools/install-deps
	@$(MAKE) --no-print-directory build
	@bench/run

fuzz: deps
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tools/fuzz

sanitize: deps
	@spec/server/ctl start
	@eval "$$(spec/server/ctl env --export)"; tools/test-sanitize

# The source rock of the release (rockspec/toolzz-<version>.rockspec) in
# $(BUILD)/dist; `make test` installs one into a throwaway tree (tools/test-dist).
dist:
	@tools/make-dist $(BUILD)/dist

clean:
	-spec/server/ctl stop
	rm -rf $(BUILD)
