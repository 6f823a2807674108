"""python3 -m nnvis_kernel -f <connection file>: runs the nnvis Jupyter kernel."""
from ipykernel.kernelapp import IPKernelApp

from .kernel import NnvisKernel

IPKernelApp.launch_instance(kernel_class=NnvisKernel)
