rockspec_format = "3.0"
package = "nnvis"
version = "scm-1"
-- `luarocks make rockspec/nnvis-scm-1.rockspec` builds the checkout it is run in (source is not
-- fetched); `make rock` writes build/nnvis-scm-1.src.rock, a source rock holding the checkout's
-- files, and `luarocks install` of that rock (or of the binary rock `luarocks pack nnvis` makes
-- after an install) works offline.  The url names the archive `make rock` builds and packs.
source = {
   url = "nnvis-scm-1.tar.gz",
   dir = "nnvis",
}
description = {
   summary = "Look inside neural networks: tensors, autograd, layers, summaries, feature maps, CAMs.",
   detailed = [[
nnvis is a Lua 5.4 library written in C and Lua: float32 tensors with reverse-mode
autograd on OpenBLAS, neural-network layers and models, and the visualization and
explanation tools to see what a model is and what it does.]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4",
}
external_dependencies = {
   LODEPNG = { header = "lodepng.h" },
   ZLIB = { header = "zlib.h" },
   LIBZIP = { header = "zip.h" },
   JPEG = { header = "jpeglib.h" },
   PROTOBUF_C = { header = "protobuf-c/protobuf-c.h" },   -- and protoc-c (protobuf-c-compiler) for the build
   READLINE = { header = "readline/readline.h" },
   CAIRO = { header = "cairo/cairo.h" },   -- figures: Cairo with fontconfig/FreeType (fonts-dejavu-core)
   FONTCONFIG = { header = "fontconfig/fontconfig.h" },
   DNNL = { header = "oneapi/dnnl/dnnl.h" },   -- convolutions: oneDNN (libdnnl-dev), JIT-compiled for the CPU at run time
   -- pretrained weights: downloads by libcurl (libcurl4-openssl-dev; Debian keeps curl/curl.h in
   -- the multiarch include folder, where LuaRocks does not look, so it is not listed) and their
   -- sha256 by OpenSSL's libcrypto
   OPENSSL = { header = "openssl/evp.h" },
   MICROHTTPD = { header = "microhttpd.h" },   -- the board's server (nnvis.http, libmicrohttpd-dev)
}
build = {
   type = "make",
   build_variables = {
      LUA_INC = "$(LUA_INCDIR)",
      CFLAGS = "$(CFLAGS)",
      OPT = "-O3",   -- portable: baseline x86-64, hot loops dispatch by CPU (NV_HOT), no -march=native
      BUILD = "build/portable",   -- never the checkout's own build/, which `make` tunes for its machine
   },
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
      BUILD = "build/portable",
   },
   install = {
      bin = { nnvis = "bin/nnvis" },   -- the REPL, as the `nnvis` command
   },
}
