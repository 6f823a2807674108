rockspec_format = "3.0"
package = "nnvis"
version = "scm-1"
source = {
   url = "git+file:///nnvis",   -- built from a checkout with `luarocks make`
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
}
build = {
   type = "make",
   build_variables = {
      LUA_INC = "$(LUA_INCDIR)",
      CFLAGS = "$(CFLAGS)",
   },
   install_variables = {
      INST_LIBDIR = "$(LIBDIR)",
      INST_LUADIR = "$(LUADIR)",
   },
   install = {
      bin = { nnvis = "bin/nnvis" },   -- the REPL, as the `nnvis` command
   },
}
