"""Conformance: the model's programs compiled to C and run on real kernels (this machine's, QEMU)."""
