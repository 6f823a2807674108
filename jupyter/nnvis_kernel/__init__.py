"""nnvis_kernel: a Jupyter kernel for Lua 5.4 with nnvis (see kernel.py)."""
