"""rseqcheck's engines and tooling: they read the IR and know nothing of rseq."""

__version__ = "0.1.0"
