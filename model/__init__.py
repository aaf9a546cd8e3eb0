"""rseqcheck's model: the kernel semantics, written once on the IR."""
