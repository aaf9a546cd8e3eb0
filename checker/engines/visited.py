"""The visited set of the explicit search: packed states with parent links.

`Table(bits, workers=1, me=0)` keeps states (non-negative ints of at most
`bits` bits) in the order they were entered, each with the global id of its
parent (-1 for the root), and finds them by value:

- `add(state, parent)`: its index if new, -1 if known; partitioned
  (workers > 1), -2 for a state another worker owns, which goes to that
  worker's outbox instead; `add_xor(state, masks, parent)` adds
  state ^ m for each m of a tuple;
- `get(i)`, `parent(i)`, `index(state)` (-1 if absent), `len`, `in`,
  iteration (the states in order);
- `owner(state)`, `take(worker)` (the outbox as bytes), `pending(worker)`
  (its size), `add_batch(bytes)`, `reserve(n)` (grow the index now for n
  entries)
  (-> first new index, number added), `nbytes()`.

A parent is given as an index of the same table (or -1) and kept as a
global id, index * workers + worker, which `parent(i)` returns and the
records of `take` carry.  Breadth-first, the states of a level are a
contiguous range of indices, so the search keeps no frontier.

The compiled table (checker/engines/_visited.c, built by `pip install`)
stores a state as machine words outside the interpreter's heap (about 40
bytes per state against about 100 for a dict of ints), and runs the
search's level loop (`Table.expand`, over the blocks' `Memo`s: see
checker/engines/compile.py, `_native_loops`).  `DictTable` is the table
alone in Python, the reference the tests hold the compiled one to; when
the extension was not built (no C compiler) the search keeps its dict.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

try:
    from rseqcheck.checker.engines._visited import Memo
    from rseqcheck.checker.engines._visited import Table as _CTable
except ImportError:  # pragma: no cover - the install had no C compiler
    _CTable = Memo = None

COMPILED = _CTable is not None


class DictTable:
    """The table in pure Python (a dict and two lists)."""

    def __init__(self, bits: int, workers: int = 1, me: int = 0):
        if workers < 1 or not 0 <= me < workers:
            raise ValueError("need 0 <= me < workers")
        self.words = max(1, (bits + 63) // 64)
        self.workers, self.me = workers, me
        self.ix: dict[int, int] = {}
        self.states: list[int] = []
        self.parents: list[int] = []
        self.out: list[bytearray] = [bytearray() for _ in range(workers)]

    def _owner(self, s: int) -> int:
        h = hashlib.blake2b(s.to_bytes(self.words * 8, "little"), digest_size=8).digest()
        return int.from_bytes(h, "little") % self.workers

    def _enter(self, s: int, parent: int) -> int:
        if s in self.ix:
            return -1
        i = self.ix[s] = len(self.states)
        self.states.append(s)
        self.parents.append(parent)
        return i

    def add(self, s: int, parent: int) -> int:
        if s < 0 or s.bit_length() > self.words * 64:
            raise OverflowError("state does not fit the table")
        parent = parent * self.workers + self.me if parent >= 0 else -1
        if self.workers > 1 and (o := self._owner(s)) != self.me:
            self.out[o] += s.to_bytes(self.words * 8, "little") + parent.to_bytes(8, "little", signed=True)
            return -2
        return self._enter(s, parent)

    def add_xor(self, s: int, masks: tuple[int, ...], parent: int) -> None:
        for m in masks:
            self.add(s ^ m, parent)

    def index(self, s: int) -> int:
        return self.ix.get(s, -1)

    def get(self, i: int) -> int:
        return self.states[i]

    def parent(self, i: int) -> int:
        return self.parents[i]

    def owner(self, s: int) -> int:
        return self._owner(s) if self.workers > 1 else 0

    def take(self, worker: int) -> bytes:
        b = bytes(self.out[worker])
        self.out[worker].clear()
        return b

    def reserve(self, n: int) -> None:
        pass  # a dict grows by itself

    def pending(self, worker: int) -> int:
        return len(self.out[worker])

    def add_batch(self, records: bytes) -> tuple[int, int]:
        rec = (self.words + 1) * 8
        if len(records) % rec:
            raise ValueError("records of another width")
        first, added = len(self.states), 0
        for at in range(0, len(records), rec):
            s = int.from_bytes(records[at : at + rec - 8], "little")
            p = int.from_bytes(records[at + rec - 8 : at + rec], "little", signed=True)
            added += self._enter(s, p) >= 0
        return first, added

    def nbytes(self) -> int:
        return 0  # not measured: Python objects

    def __len__(self) -> int:
        return len(self.states)

    def __contains__(self, s: int) -> bool:
        return s in self.ix

    def __iter__(self) -> Iterator[int]:
        return iter(self.states)


Table = _CTable if _CTable is not None else DictTable
