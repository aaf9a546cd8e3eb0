"""Bitstate search (SPIN's -DBITSTATE): bug hunting beyond memory.

The visited set is a bit table of m bits (a Bloom filter): a state is
"seen" when all k of its bit positions are set.  A new state whose k
bits happen to be set already by other states is taken for a seen one
and dropped with whatever only it leads to, so a search that finds no
violation proves nothing: its verdict is NOT_PROOF, never "holds", and it
comes with the coverage estimate SPIN prints (the hash factor m/n and
the expected number of such omissions).  A violation found is real: each
step of its trace is a successor of the one before, from the initial
state, as the successor function gives it.

Positions: one 64-bit hash h of the packed state (CPython's tuple hash,
an xxHash round per 60-bit chunk: deterministic, unlike str/bytes
hashing), split into a = low 32 bits and b = high 32 bits, odd; the i-th
position is a + i*b mod m (Kirsch and Mitzenmacher's double hashing,
"Less hashing, same performance", 2006).  m is a power of two, so b is a
unit mod m and the k positions differ.

Traces.  The table keeps no parents.  Parents are kept for a window of
the latest BFS levels (newest first, while they hold at most `window`
states; the level being built drops the parents it has whenever it alone
is over, checked before each chunk of states): the trace is walked back
through the window.  If the walk reaches a state u of depth d whose
parent is not there, the search is run again from the start up to depth
d, keeping at depth d the parent of u alone: the search is deterministic
(same table size, same order of successors), so it builds the same
levels, u among them, and the walk goes on through the new window; each
rerun goes back at least one level.  So a trace costs at most one rerun
per level, each shorter than the search, and memory stays the table
plus the window.  With a table large enough that no state is lost,
every level is the full search's and the trace is the full search's
shortest one.

Memory: the table (m/8 bytes: SPIN's hash factor m/n of 100 costs 12.5
bytes per state), the window, and the two BFS levels being read and
written, kept as fixed-width bytes (`Frontier`), not Python ints.

The search itself is `checker.explicit`'s plain BFS level loop
(`_Search.level_full`, the packed engine's expand), with the table in
place of the `seen` dict: engine-level, it knows nothing about rseq.
Partial-order reduction needs parents for its cycle proviso, so it is
off; so are symmetry reduction and liveness goals.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable

from rseqcheck.checker.engines.compile import Visit
from rseqcheck.checker.engines.explicit import _ROOT, Progress, SearchResult, Stats, _Search
from rseqcheck.model.ir import System

NOT_PROOF = "no violation found"  # the verdict when nothing was found: not "holds"
MAX_BITS = 1 << 32  # positions are 32-bit halves of one 64-bit hash
DEFAULT_BITS = 1 << 26  # 64M bits = 8 MiB
DEFAULT_K = 3
DEFAULT_WINDOW = 1 << 18  # states whose parents are kept


def table_bits(size: int) -> int:
    """`size` bits rounded up to a power of two (at least 8)."""
    return max(8, 1 << (size - 1).bit_length())


def _hash_expr(width: int) -> str:
    """A 64-bit hash of the packed state t of `width` bits, as Python: the
    tuple of its 60-bit chunks (each chunk hashes to itself, the tuple
    mixes them)."""
    n = max(1, -(-width // 60))
    m60 = (1 << 60) - 1
    parts = "".join(f"(t >> {60 * i}) & {m60}, " for i in range(n - 1)) + (f"t >> {60 * (n - 1)}," if n > 1
                                                                         else "t,")
    return f"_hash(({parts})) & {(1 << 64) - 1}"


def _hash_fn(width: int) -> Callable[[int], int]:
    ns: dict = {}
    exec(f"def h(t, _hash=hash):\n    return {_hash_expr(width)}\n", ns)
    return ns["h"]


def visit(width: int, m: int, k: int) -> Visit:
    """The bit table's test, inlined in the packed engine's expand loops
    (`BitTable.__contains__` and `__setitem__` without the calls)."""
    # names of their own: the loops use a, b, s, t, x, n
    pos = [f"hp{i} = (ha + {i} * hb) & {m - 1}" if i else f"hp0 = ha & {m - 1}" for i in range(k)]
    new = "not (" + " and ".join(f"TB[hp{i} >> 3] >> (hp{i} & 7) & 1" for i in range(k)) + ")"
    enter = tuple(f"TB[hp{i} >> 3] |= 1 << (hp{i} & 7)" for i in range(k)) + ("LV[t] = s",)
    pre = (f"hh = {_hash_expr(width)}", "ha = hh & 0xFFFFFFFF", "hb = hh >> 32 | 1", *pos)
    return Visit(new, enter, pre, ("TB = seen.table", "LV = seen.level"), ("_hash",))


class BitTable:
    """The visited set: m bits, k per state, with the dict interface the
    packed engine's expand loops use (`in`, item assignment, `len`).  An
    assignment t -> parent also records the parent in the window."""

    def __init__(self, bits: int, k: int, width: int, window: int):
        self.m = table_bits(bits)
        self.k = k
        self.table = bytearray(self.m >> 3)
        self.base = 0  # states entered before the current level
        self.window = window
        self.levels: dict[int, dict[int, int]] = {}  # depth -> (state -> parent), oldest first
        self.level: dict[int, int] = {}
        self.depth = 0  # of the level being built
        self.target: tuple[int, int] | None = None  # a rerun's (depth, state): its only parent kept there
        self._h = _hash_fn(width)
        self._last = -1  # the state `in` last looked at, and its hash: `[]=` follows `in`
        self._last_h = 0

    def new_level(self, depth: int) -> None:
        """States entered from now on are at `depth`; drop the oldest
        levels while the window holds more than its budget."""
        self.base += len(self.level)
        self.depth = depth
        self.level = _Only(self.target[1]) if self.target and self.target[0] == depth else {}
        self.levels[depth] = self.level
        self.trim()

    def trim(self) -> None:
        """Keep the window within its budget: drop the oldest levels, and
        the parents of the level being built when it alone is over (its
        states' parents are then found by a rerun)."""
        total = sum(map(len, self.levels.values()))
        for d in list(self.levels):
            if total <= self.window or d == self.depth:
                break
            total -= len(self.levels.pop(d))
        if total > self.window:
            self.base += len(self.level)
            self.level = self.levels[self.depth] = {}

    def _positions(self, t: int) -> list[int]:
        h = self._last_h if t == self._last else self._h(t)
        a, b, mask = h & 0xFFFFFFFF, (h >> 32) | 1, self.m - 1
        return [(a + i * b) & mask for i in range(self.k)]

    def __contains__(self, t: int) -> bool:
        h = self._h(t)
        self._last, self._last_h = t, h
        a, b, mask, tb = h & 0xFFFFFFFF, (h >> 32) | 1, self.m - 1, self.table
        for i in range(self.k):
            p = (a + i * b) & mask
            if not tb[p >> 3] >> (p & 7) & 1:
                return False
        return True

    def __setitem__(self, t: int, parent: int) -> None:
        tb = self.table
        for p in self._positions(t):
            tb[p >> 3] |= 1 << (p & 7)
        self.level[t] = parent

    def __len__(self) -> int:
        return self.base + len(self.level)

    def back(self, t: int, depth: int) -> tuple[list[int], tuple[int, int] | None]:
        """Walk parents from t, at `depth`, through the window: the states
        from the oldest reached to t, and (depth, state) of the first one
        whose parent is not there (None if it reached the initial state)."""
        chain: list[int] = []
        while True:
            lv = self.levels.get(depth)
            if lv is None or t not in lv:
                return chain[::-1], (depth, t)
            chain.append(t)
            t, depth = lv[t], depth - 1
            if t == _ROOT:
                return chain[::-1], None

    def coverage(self) -> dict[str, float]:
        """SPIN's figures: hash factor m/n (SPIN: best if > 100), bits
        set, the chance that a new state is taken for a seen one now
        (fill^k), and the expected number of omissions over the run (new
        states taken for seen ones): the sum over insertions i < n of
        (1 - e^(-k i / m))^k, the Bloom filter's false-positive rate
        after i insertions."""
        n, m, k = len(self), self.m, self.k
        tb, step = memoryview(self.table), 1 << 20  # by slices: no int as large as the table
        fill = sum(int.from_bytes(tb[i:i + step], "little").bit_count() for i in range(0, len(tb), step)) / m
        steps = 256
        lost = 0.0
        if n:  # midpoint rule over [0, n]
            for j in range(steps):
                x = (j + 0.5) * n / steps
                lost += (1 - math.exp(-k * x / m)) ** k
            lost *= n / steps
        return {"bits": m, "k": k, "states": n, "hash_factor": m / n if n else math.inf, "fill": fill,
                "p_miss_now": fill ** k, "expected_omissions": lost}


class _Only(dict):
    """A rerun's level: the parent of one state only (so the rerun's
    `len(table)` undercounts: a rerun has no state limit and no report)."""

    def __init__(self, target: int):
        super().__init__()
        self.target = target

    def __setitem__(self, t: int, parent: int) -> None:
        if t == self.target:
            super().__setitem__(t, parent)


class Frontier:
    """A BFS level as fixed-width bytes, not a list of ints (~50 bytes
    each): on wide levels the frontier, not the table, is the memory.
    What `level_full` and the expand loops use of a list: append, len,
    slices (decoded on the way out)."""

    def __init__(self, width: int):
        self.nb = max(1, -(-width // 8))
        self.buf = bytearray()

    def append(self, t: int) -> None:
        self.buf += t.to_bytes(self.nb, "little")

    def __len__(self) -> int:
        return len(self.buf) // self.nb

    def __getitem__(self, sl: slice) -> list[int]:
        nb = self.nb
        lo, hi, _ = sl.indices(len(self))
        mv = memoryview(self.buf)
        return [int.from_bytes(mv[i:i + nb], "little") for i in range(lo * nb, hi * nb, nb)]


class _BitSearch(_Search):
    """`_Search`'s plain BFS with a `BitTable` for `seen`, told of each
    new level."""

    TABLE = False  # `seen` is the bit table

    def __init__(self, system: System, max_depth: int, bits: int, k: int, window: int, timeout: float | None,
                 max_states: int | None, progress: Progress | None, progress_every: float):
        super().__init__(system, max_depth, False, timeout, max_states, progress, progress_every)
        self.params = (bits, k, window)
        self.seen = BitTable(bits, k, self.pk.layout.bits, window)  # type: ignore[assignment]
        self.reruns = 0
        if self.pk.with_visit is not None:
            self.expand, self.expand_limited = self.pk.with_visit(visit(self.pk.layout.bits, self.seen.m, k),
                                                                  {"_hash": hash})
        # the window kept within its budget before each chunk of a level
        self.expand, self.expand_limited = _trimming(self.expand), _trimming(self.expand_limited)

    def level_start(self, depth: int) -> None:
        self.seen.new_level(depth)

    def new_frontier(self) -> Frontier:  # type: ignore[override]
        return Frontier(self.pk.layout.bits)

    def finish(self, verdict: str, **kw) -> SearchResult:
        res = super().finish(verdict, **kw)
        res.engine = "explicit"
        res.bitstate = self.seen.coverage()
        res.bitstate["reruns"] = self.reruns
        if verdict == "holds":  # never: the table may have dropped states
            res.verdict = NOT_PROOF
        return res

    def violation(self, t: int, prop: int) -> SearchResult:
        res = super().violation(t, prop)
        res.shortest = False  # unless no state was lost: not known
        return res

    def path_to(self, t: int) -> list[tuple[int, tuple]]:
        chain, out = self.seen.back(t, self.seen.depth)  # t: in the level being built
        while out is not None:
            depth, u = out
            # the same engine (its memos give the same successors in the
            # same order), a new table, no clock: a trace is no resource
            again = copy.copy(self)
            again.seen = BitTable(*self.params[:2], self.pk.layout.bits, self.params[2])
            again.seen.target = out
            again.stats, again.depth, again.deadline, again.watch = Stats(), 0, None, False
            again.limit, again.max_depth = sys.maxsize, depth
            self.reruns += 1
            got = again.run()
            if got.verdict == "violation" or u not in again.seen.levels.get(depth, ()):
                raise AssertionError("the rerun did not rebuild the same levels")
            more, out = again.seen.back(u, depth)
            chain = more + chain
        return self.trace_of(chain)


def _trimming(expand: Callable) -> Callable:
    """expand or expand_limited, trimming the window before each chunk."""
    def run(chunk, seen, *rest):
        seen.trim()
        return expand(chunk, seen, *rest)

    return run


def bitstate(system: System, max_depth: int, bits: int = DEFAULT_BITS, k: int = DEFAULT_K,
             window: int = DEFAULT_WINDOW, timeout: float | None = None, max_states: int | None = None,
             progress: Progress | None = None, progress_every: float = 1.0) -> SearchResult:
    """Breadth-first bitstate search with a table of `bits` bits (rounded
    up to a power of two), `k` bits per state, and parents kept for
    `window` states (see the module's doc).  Verdict: "violation" (real,
    with a trace from the initial state), NOT_PROOF, or "unknown"."""
    if not 1 <= k <= 32:
        raise ValueError("k must be 1..32")
    if table_bits(bits) > MAX_BITS:
        raise ValueError(f"the table has at most {MAX_BITS} bits (512M bytes)")
    return _BitSearch(system, max_depth, bits, k, window, timeout, max_states, progress, progress_every).run()
