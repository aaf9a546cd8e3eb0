"""The engines: searches over the IR (explicit BFS, Z3 BMC, induction, liveness), knowing nothing of rseq."""
