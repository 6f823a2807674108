# nnvis — build, test, demo, bench.  `make demo` and `make test` do all set-up on Debian 12.
LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
CC       ?= cc
CXX      ?= c++
OPT      ?= -O3 -march=native
override CFLAGS += $(OPT) -std=c11 -fPIC -Wall -Wextra -Wno-unused-parameter -I$(LUA_INC) -Icsrc -I$(BUILD)/gen
override CXXFLAGS += $(OPT) -fPIC -Wall -Icsrc
override LDLIBS += -llodepng -lzip -ljpeg -lprotobuf-c -lz -ldl -lm -lpthread -lstdc++

DEB_PKGS = lua5.4 liblua5.4-dev libopenblas-dev liblodepng-dev lua-busted luarocks zlib1g-dev \
           libzip-dev libjpeg62-turbo-dev libjpeg-turbo-progs \
           dataset-fashion-mnist libprotobuf-c-dev protobuf-c-compiler libonnx-testdata

BUILD    = build
SO       = $(BUILD)/nnvis/core.so
CSRC     = $(wildcard csrc/*.c)
CXXSRC   = $(wildcard csrc/*.cc)
# the ONNX reader's protobuf code is generated from csrc/onnx.proto by protoc-c (never committed)
GEN      = $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
OBJS     = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(CSRC)) $(patsubst csrc/%.cc,$(BUILD)/obj/%.o,$(CXXSRC)) \
           $(BUILD)/obj/onnx.pb-c.o
HDRS     = $(wildcard csrc/*.h) $(BUILD)/gen/onnx.pb-c.h

# Lua finds the freshly built module and the sources without installing anything.
export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;$(CURDIR)/bench/lib/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps test demo bench clean install rock docs

all: $(SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(GEN) &: csrc/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=csrc --c_out=$(BUILD)/gen csrc/onnx.proto

$(BUILD)/obj/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-extra -c $< -o $@

$(BUILD)/obj/%.o: csrc/%.cc $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(LDLIBS) -Wl,--version-script=csrc/exports.map

# Installs the Debian packages that are missing (nothing when all are present).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  SUDO=; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo "installing:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

test: deps
	@$(MAKE) --no-print-directory all
	busted --lua=$(LUA) -o spec/summary_output.lua spec

demo: deps
	@$(MAKE) --no-print-directory all
	$(LUA) examples/demo.lua

bench: deps
	@$(MAKE) --no-print-directory all
	@for f in bench/*.lua; do echo "== $$f"; $(LUA) $$f || exit 1; done

clean:
	rm -rf $(BUILD)

# docs/API.md from the doc comments (spec/docs_spec.lua fails when it is stale)
docs:
	$(LUA) tools/gendocs.lua .

# A source rock of the committed files: build/nnvis-scm-1.src.rock (installs offline with
# `luarocks --lua-version=5.4 install build/nnvis-scm-1.src.rock`).
rock:
	@mkdir -p $(BUILD)/rock
	git archive --format=tar.gz --prefix=nnvis/ -o $(BUILD)/rock/nnvis-scm-1.tar.gz HEAD
	sed 's|url = "nnvis-scm-1.tar.gz"|url = "file://$(CURDIR)/$(BUILD)/rock/nnvis-scm-1.tar.gz"|' \
	  rockspec/nnvis-scm-1.rockspec > $(BUILD)/rock/nnvis-scm-1.rockspec
	cd $(BUILD)/rock && luarocks --lua-version=5.4 pack nnvis-scm-1.rockspec
	mv $(BUILD)/rock/nnvis-scm-1.src.rock $(BUILD)/

# Used by `luarocks make rockspec/nnvis-scm-1.rockspec` (INST_* come from LuaRocks).
INST_LIBDIR ?= /usr/local/lib/lua/5.4
INST_LUADIR ?= /usr/local/share/lua/5.4
install: $(SO)
	mkdir -p $(INST_LIBDIR)/nnvis $(INST_LUADIR)/nnvis
	cp $(SO) $(INST_LIBDIR)/nnvis/core.so
	cp lua/nnvis/*.lua $(INST_LUADIR)/nnvis/
