# nnvis — build, test, demo, bench.  `make demo` and `make test` do all set-up on Debian 12.
LUA      ?= lua5.4
LUA_INC  ?= /usr/include/lua5.4
CC       ?= cc
CXX      ?= c++
OPT      ?= -O3 -march=native
# Cairo and fontconfig are preloaded too: Lua unloads the core (and the libraries only it
# uses) at exit, and LeakSanitizer cannot name an unloaded library's one-time allocations
SAN_LIBS = $$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so) \
           $$($(CC) -print-file-name=libcairo.so.2) $$($(CC) -print-file-name=libfontconfig.so.1)
# `make test SANITIZE=1`: the core built with AddressSanitizer and UBSan into build-asan/,
# the suite run with their runtimes preloaded (lua5.4 itself is not instrumented).  GCC 12's
# LeakSanitizer crashes at exit walking the dynamic TLS of oneDNN's OpenMP threads ("Tracer
# caught signal 11"); intercept_tls_get_addr=0 keeps it out of there.
ifeq ($(SANITIZE),1)
OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
BUILD    = build-asan
SAN_ENV  = NNVIS_BUILD=build-asan LD_PRELOAD="$(SAN_LIBS)" \
           ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1:intercept_tls_get_addr=0 \
           LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
endif
SAN_ENV_FUZZ = LUA_CPATH="$(CURDIR)/build-asan/?.so;;" \
           LD_PRELOAD="$(SAN_LIBS)" \
           ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
override CFLAGS += $(OPT) -fopenmp -std=c11 -fPIC -Wall -Wextra -Wno-unused-parameter -I$(LUA_INC) -I/usr/include/cairo -Icsrc -I$(BUILD)/gen
override CXXFLAGS += $(OPT) -fPIC -Wall -Icsrc
override LDLIBS += -lcairo -lfontconfig -llodepng -lzip -ljpeg -lprotobuf-c -lcurl -lcrypto -ldnnl -lgomp -lz -ldl -lm -lpthread -lstdc++

DEB_PKGS = lua5.4 liblua5.4-dev libopenblas-dev liblodepng-dev lua-busted luarocks zlib1g-dev \
           libzip-dev libjpeg62-turbo-dev libjpeg-turbo-progs \
           dataset-fashion-mnist libprotobuf-c-dev protobuf-c-compiler libonnx-testdata \
           libreadline-dev tmux
DEB_PKGS += chromium
DEB_PKGS += python3-ipykernel python3-nbclient python3-nbformat python3-jupyter-client python3-nbconvert
DEB_PKGS += libcairo2-dev fonts-dejavu-core libdnnl-dev
# libcurl and OpenSSL's libcrypto: nv.models' weights = "..." downloads and checks torchvision's files
DEB_PKGS += libcurl4-openssl-dev libssl-dev
# the board (docs/board.md): libmicrohttpd serves it; Debian's dygraphs draws its scalar charts and
# markdown-it renders text summaries (both served from /usr/share/javascript, never fetched);
# nodejs runs playwright-core for the browser specs (its npm comes with it: NodeSource's nodejs
# bundles npm, Debian's package npm conflicts with it, so npm is not listed)
DEB_PKGS += libmicrohttpd-dev libjs-dygraphs libjs-markdown-it nodejs
# curl: spec/board_server_spec.lua fetches from the board with it
DEB_PKGS += curl
# PyTorch, for the specs that read real .pth checkpoints and torchvision's ONNX exports against
# PyTorch's own logits, and for the benchmarks' ratios (about 95 MB to download)
DEB_PKGS += python3-torch python3-torchvision

BUILD    ?= build
SO       = $(BUILD)/nnvis/core.so
# the REPL's readline binding is its own module, so the core links no terminal library
RL_SRC   = csrc/lua/lua_readline.c
RL_SO    = $(BUILD)/nnvis/readline.so
# GNU OpenMP's settings, made before the core (which links libgomp) is loaded: its own module
ENV_SRC  = csrc/lua/lua_ompenv.c
ENV_SO   = $(BUILD)/nnvis/ompenv.so
# the board's HTTP server (docs/board.md) and its event file scanner: a module of its own, so the
# core links no HTTP library and the server thread's Lua state never loads the core
HTTP_SRC = csrc/lua/lua_http.c
TFR_SRC  = csrc/io/tfrecord.c
HTTP_SO  = $(BUILD)/nnvis/http.so
# sources are found in every layer folder of csrc/ (csrc/LAYERS); objects mirror the folders
CSRC     = $(filter-out $(RL_SRC) $(ENV_SRC) $(HTTP_SRC) $(TFR_SRC),$(shell find csrc -name '*.c'))
CXXSRC   = $(shell find csrc -name '*.cc')
# the ONNX reader's protobuf code is generated from csrc/io/onnx.proto by protoc-c (never committed)
GEN      = $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
OBJS     = $(patsubst csrc/%.c,$(BUILD)/obj/%.o,$(CSRC)) $(patsubst csrc/%.cc,$(BUILD)/obj/%.o,$(CXXSRC)) \
           $(BUILD)/obj/onnx.pb-c.o
HDRS     = $(shell find csrc -name '*.h' -o -name '*.def') $(BUILD)/gen/onnx.pb-c.h

# Lua finds the freshly built module and the sources without installing anything.
export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;$(CURDIR)/bench/lib/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps test demo bench clean install rock docs jupyter

all: $(SO) $(RL_SO) $(ENV_SO) $(HTTP_SO)

$(BUILD)/obj/%.o: csrc/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(GEN) &: csrc/io/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=csrc/io --c_out=$(BUILD)/gen csrc/io/onnx.proto

$(BUILD)/obj/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-extra -c $< -o $@

$(BUILD)/obj/%.o: csrc/%.cc $(HDRS)
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

$(SO): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(LDLIBS) -Wl,--version-script=csrc/lua/exports.map

$(RL_SO): $(RL_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -shared -o $@ $< $(LDFLAGS) -lreadline -Wl,--version-script=csrc/lua/readline_exports.map

$(HTTP_SO): $(HTTP_SRC) $(TFR_SRC) csrc/io/tfrecord.h
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fopenmp,$(CFLAGS)) -shared -o $@ $(HTTP_SRC) $(TFR_SRC) $(LDFLAGS) -lmicrohttpd -lpthread -Wl,--version-script=csrc/lua/http_exports.map

$(ENV_SO): $(ENV_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fopenmp,$(CFLAGS)) -shared -o $@ $< $(LDFLAGS) -Wl,--version-script=csrc/lua/ompenv_exports.map

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

# playwright-core (npm; no browser download: it drives Debian's chromium) in a folder of its own,
# for the specs that click, hover and drag in the board's page
PLAYWRIGHT = build/node/node_modules/playwright-core/package.json
$(PLAYWRIGHT):
	@mkdir -p build/node
	cd build/node && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --silent playwright-core@1.48.2

test: deps
	@$(MAKE) --no-print-directory all $(PLAYWRIGHT)
	$(SAN_ENV) NNVIS_REQUIRE_DEPS=1 busted --lua=$(LUA) -o spec/summary_output.lua spec

demo: deps
	@$(MAKE) --no-print-directory all
	$(LUA) examples/demo.lua

bench: deps
	@$(MAKE) --no-print-directory all
	@for f in bench/*.lua; do echo "== $$f"; $(LUA) $$f || exit 1; done

# ---- fuzzing: `make fuzz FUZZ_SECONDS=60` ----------------------------------------------
# libFuzzer harnesses (fuzz/readers.c) for each reader of outside data, on the core built with
# clang and ASan+UBSan into build-fuzz/, each run FUZZ_SECONDS from the seeds in fuzz/seeds/;
# then the random fuzz of the Lua API (fuzz/api_fuzz.lua) under the sanitizers; then the
# structured fuzzer (fuzz/structured/, alone `make fuzz-structured`): torch.save files and ONNX
# exports written by PyTorch, mutated as pickle opcodes, zip layouts (bombs too), graphs and
# external data, loaded and run by nnvis under the sanitizers with a 4 GB memory cap and a
# tripwire that aborts on an exec or an open outside the case's folder; a hang (5 s), crash or
# internal Lua error fails it (FUZZ_STRUCTURED_FLAGS=--keep-going records them all instead).
FUZZ_SECONDS ?= 60
FUZZ_READERS  = png jpeg safetensors idx zip onnx tfrecord
FUZZ_PKGS     = clang libclang-rt-14-dev python3-onnx
FZ            = build-fuzz
FZS           = $(FZ)/structured
FUZZ_STRUCTURED_FLAGS ?=
FZ_FLAGS      = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
.PHONY: fuzz fuzz-build fuzz-structured fuzz-api
fuzz: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"
	@$(MAKE) --no-print-directory fuzz-build
	@mkdir -p $(FZ)/corpus
	@for r in $(FUZZ_READERS); do \
	  mkdir -p $(FZ)/corpus/$$r; echo "== fuzzing the $$r reader for $(FUZZ_SECONDS) s"; \
	  $(FZ)/fuzz_$$r -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
	    $(FZ)/corpus/$$r fuzz/seeds/$$r > $(FZ)/$$r.log 2>&1 || { tail -40 $(FZ)/$$r.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units|Done' $(FZ)/$$r.log; \
	done
	@$(MAKE) --no-print-directory fuzz-api
	@$(MAKE) --no-print-directory fuzz-structured

# the random fuzz of the Lua API alone
fuzz-api: deps
	@$(MAKE) --no-print-directory all SANITIZE=1
	$(SAN_ENV_FUZZ) $(LUA) fuzz/api_fuzz.lua --seconds $(FUZZ_SECONDS)

# Debian's python3 (the one with python3-torch and python3-onnx), not whichever is first on PATH
fuzz-structured: deps
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"
	@$(MAKE) --no-print-directory all SANITIZE=1
	@$(MAKE) --no-print-directory $(FZS)/tripwire.so
	/usr/bin/python3 fuzz/structured/seeds.py $(FZS)/seeds
	/usr/bin/python3 fuzz/structured/drive.py --seconds $(FUZZ_SECONDS) --work $(FZS) \
	  --sanitizer-libs "$(SAN_LIBS)" $(FUZZ_STRUCTURED_FLAGS)

$(FZS)/tripwire.so: fuzz/structured/tripwire.c
	@mkdir -p $(dir $@)
	$(CC) -O1 -g -Wall -Wextra -shared -fPIC -o $@ $< -ldl

# the objects by name (never a glob of the folder: objects of files since moved would link twice)
FZ_OBJS = $(foreach f,$(filter-out csrc/lua/%.c,$(CSRC)) $(TFR_SRC),$(FZ)/fobj/$(subst /,_,$(patsubst csrc/%.c,%,$(f))).o) \
          $(FZ)/fobj/onnx.pb-c.o $(FZ)/fobj/io_png_shim.o
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FZ) $(FZ)/gen/onnx.pb-c.c
	@mkdir -p $(FZ)/fobj
	@for f in $(filter-out csrc/lua/%.c,$(CSRC)) $(TFR_SRC) $(FZ)/gen/onnx.pb-c.c; do \
	  o=$(FZ)/fobj/$$(echo $${f%.c} | sed 's|^csrc/||; s|^$(FZ)/gen/||; s|/|_|g').o; [ $$o -nt $$f ] || \
	  clang $(FZ_FLAGS) -fsanitize=fuzzer-no-link -std=c11 -fPIC -I/usr/include/cairo -Icsrc -I$(FZ)/gen -c $$f -o $$o || exit 1; \
	done
	@clang++ $(FZ_FLAGS) -fsanitize=fuzzer-no-link -fPIC -Icsrc -c csrc/io/png_shim.cc -o $(FZ)/fobj/io_png_shim.o
	@for r in $(FUZZ_READERS); do \
	  R=$$(echo $$r | tr a-z A-Z); \
	  clang++ $(FZ_FLAGS) -fsanitize=fuzzer -DFUZZ_$$R -x c -std=c11 -Icsrc -I$(FZ)/gen fuzz/readers.c -x none \
	    $(FZ_OBJS) -o $(FZ)/fuzz_$$r $(LDLIBS) || exit 1; \
	done

clean:
	rm -rf $(BUILD) build-asan $(FZ)

# The Jupyter kernelspec `nnvis` for the current user ($$JUPYTER_DATA_DIR/kernels/nnvis, else
# ~/.local/share/jupyter/kernels/nnvis): Debian's python3 and ipykernel, this checkout's lua/ and build/.
JUPYTER_KERNEL_DIR = $(or $(JUPYTER_DATA_DIR),$(HOME)/.local/share/jupyter)/kernels/nnvis
jupyter: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p "$(JUPYTER_KERNEL_DIR)"
	sed -e 's|@ROOT@|$(CURDIR)|g' -e 's|@BUILD@|$(BUILD)|g' jupyter/nnvis_kernel/kernel.json.in > "$(JUPYTER_KERNEL_DIR)/kernel.json"
	cp jupyter/nnvis_kernel/logo-32x32.png jupyter/nnvis_kernel/logo-64x64.png jupyter/nnvis_kernel/logo-svg.svg "$(JUPYTER_KERNEL_DIR)/"
	@echo "installed the kernel \"Lua 5.4 (nnvis)\" in $(JUPYTER_KERNEL_DIR)"

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
install: $(SO) $(RL_SO) $(ENV_SO) $(HTTP_SO)
	@# the Lua files of an older layout would shadow packages (nnvis/io.lua before nnvis/io/init.lua)
	rm -rf $(INST_LUADIR)/nnvis
	mkdir -p $(INST_LIBDIR)/nnvis $(INST_LUADIR)/nnvis
	cp $(SO) $(INST_LIBDIR)/nnvis/core.so
	cp $(RL_SO) $(INST_LIBDIR)/nnvis/readline.so
	cp $(ENV_SO) $(INST_LIBDIR)/nnvis/ompenv.so
	cp $(HTTP_SO) $(INST_LIBDIR)/nnvis/http.so
	cd lua/nnvis && find . -type f \( -name '*.lua' -o -path '*/page/*' \) -exec install -D -m 644 {} $(INST_LUADIR)/nnvis/{} \;
