"""What rseqcheck writes: traces in four formats, the layout of saved files, columns, progress, output errors."""
