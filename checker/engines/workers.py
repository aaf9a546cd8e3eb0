"""The plain breadth-first search on several cores.

The states are partitioned by hash: worker w owns the states whose
`Table.owner` is w and keeps them, with their parents' global ids, in its
own visited table (checker/engines/visited.py).  The search goes level by
level.  Each worker expands the states of the level it owns; a successor it
owns goes straight into its table, any other is appended to the owner's
outbox (the packed state and its parent's id, as bytes).  Then the workers
swap outboxes and enter what they receive; what each table gained is its
share of the next level.  A successor by an action that can break a
property or end the run is checked by the worker that found it, whichever
owns it (a known state cannot fail a check: the search would have stopped
when it was new), and a terminal one is sent marked as such, so its owner
enters it without expanding it.

Every level's set of states is the sequential search's, so a run that ends
without a violation has its states, transitions, depth and fired actions.
A violation is found at the same depth d as the sequential search finds
its first; the sequential search is then run to depth d, so the trace,
counts and fired actions reported are exactly those of `bfs` (the
speed-up is for proofs; a counterexample costs a sequential search to its
depth on top).

`Partition` is one worker's share and knows nothing of the transport: a
level is `expand()`, which returns the bytes for each other worker, then
`receive()` of the bytes the others sent.  `search` runs one partition per
forked process and moves the bytes through pipes, worker to worker; a
cluster runner (Dask actors, say) would move the same bytes between
machines.  Engines stay rseq-free: this reads only the packed engine.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from rseqcheck.checker.engines import visited
from rseqcheck.checker.engines.compile import Packed
from rseqcheck.checker.engines.explicit import _CHUNK, _ROOT, Progress, SearchResult, _Search, bfs
from rseqcheck.model.ir import System

CAN_FORK = "fork" in multiprocessing.get_all_start_methods()


class Terminals(set):
    """Indices of the terminal entries of a worker's table (entered, never
    expanded), and the terminal successors it found for other workers."""

    def __init__(self, tab) -> None:
        super().__init__()
        self.tab = tab
        self.out: list[list[tuple[int, int]]] = [[] for _ in range(tab.workers)]

    def send(self, t: int, i: int) -> None:
        self.out[self.tab.owner(t)].append((t, i))


@dataclass
class Level:
    """What a worker reports after a level."""

    new: int = 0  # states it entered for the next level (terminal ones too)
    terminal: int = 0  # of those, terminal
    transitions: int = 0
    violation: tuple[int, int] | None = None  # (state, property)
    stopped: str = ""  # why it stopped early: the deadline
    error: str = ""


@dataclass
class Partition:
    """Worker `me` of `workers`: its visited table and the level it expands
    (entries lo..hi-1 of the table)."""

    pk: Packed
    workers: int
    me: int
    tab: object = field(init=False)
    term: Terminals = field(init=False)

    def __post_init__(self) -> None:
        self.tab = visited.Table(self.pk.layout.bits, self.workers, self.me)
        self.term = Terminals(self.tab)
        self.expand_range, _ = self.pk.with_table()
        self.lo = self.hi = 0

    def start(self, init: int, terminal: bool) -> None:
        """Enter the initial state, if it is this worker's."""
        if self.tab.owner(init) == self.me:
            self.tab.add(init, _ROOT)
            if terminal:
                self.term.add(0)
        self.lo, self.hi = 0, len(self.tab)

    def expand(self, deadline: float | None = None) -> tuple[Level, list[bytes]]:
        """Expand this worker's states of the level: the report so far and,
        per worker, the records for it (terminal ones after a marker)."""
        rep = Level()
        tab, term = self.tab, self.term
        add, adds, get = tab.add, tab.add_xor, tab.get
        self.before = len(tab)
        self.nterm = len(term)
        try:
            for lo in range(self.lo, self.hi, _CHUNK):
                rep.transitions += self.expand_range(lo, min(lo + _CHUNK, self.hi), add, adds, get, term)
                if deadline is not None and time.monotonic() >= deadline:
                    rep.stopped = "deadline"
                    break
        except self.pk.Violation as v:
            rep.violation = (v.state, v.prop)
        out = []
        for w in range(self.workers):
            if w == self.me:
                out.append(b"")
                continue
            marks = b"".join(_record(tab, t, i, self.workers, self.me) for t, i in term.out[w])
            term.out[w].clear()
            out.append(_pack_batch(tab.take(w), marks))
        return rep, out

    def receive(self, rep: Level, batches: list[bytes]) -> Level:
        """Enter what the other workers sent (in worker order); the next
        level is what the table gained since `expand` began."""
        tab, term = self.tab, self.term
        for b in batches:
            if b:
                plain, marks = _unpack_batch(b)
                tab.add_batch(plain)
                first, n = tab.add_batch(marks)
                term.update(range(first, first + n))
        self.lo, self.hi = self.hi, len(tab)
        rep.new = self.hi - self.lo
        rep.terminal = len(term) - self.nterm
        return rep

    def fired(self) -> set[int]:
        return self.pk.fired() | {a for a, f in enumerate(self.pk.F) if f}


def _record(tab, t: int, i: int, workers: int, me: int) -> bytes:
    """`take`'s record of state t whose parent is entry i of this table."""
    return t.to_bytes(tab.words * 8, "little") + (i * workers + me).to_bytes(8, "little", signed=True)


def _pack_batch(plain: bytes, marks: bytes) -> bytes:
    return len(plain).to_bytes(8, "little") + plain + marks


def _unpack_batch(b: bytes) -> tuple[memoryview, memoryview]:
    mv = memoryview(b)
    n = int.from_bytes(mv[:8], "little")
    return mv[8 : 8 + n], mv[8 + n :]


# ---------------------------------------------------------------- runner


def _serve(pk: Packed, workers: int, me: int, conn: Connection, sends: dict[int, Connection],
           recvs: dict[int, Connection]) -> None:
    """A worker process: one `Partition`, driven by the coordinator's
    messages; outboxes go straight to the other workers, each through its
    own pipe and sending thread (so no two workers wait on each other)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    try:
        part = Partition(pk, workers, me)
        while True:
            msg = conn.recv()
            if msg[0] == "start":
                part.start(msg[1], msg[2])
                conn.send(len(part.tab))
            elif msg[0] == "level":
                rep, out = part.expand(msg[1])
                threads = [threading.Thread(target=sends[w].send_bytes, args=(out[w],)) for w in sends]
                for t in threads:
                    t.start()
                got = [recvs[w].recv_bytes() if w in recvs else b"" for w in range(workers)]
                for t in threads:
                    t.join()
                conn.send(part.receive(rep, got))
            elif msg[0] == "fired":
                conn.send(part.fired())
            else:
                return
    except Exception:  # the coordinator reruns the sequential search, which reports it
        conn.send(Level(error=traceback.format_exc()))


def bfs_workers(system: System, max_depth: int, workers: int, por: bool = True, timeout: float | None = None,
                max_states: int | None = None, progress: Progress | None = None, progress_every: float = 1.0,
                por_frozen: bool = False, symmetry: bool = False) -> SearchResult:
    """`explicit.bfs` on `workers` processes when its search is the plain
    one (no reduction that prunes: partial-order reduction finds no ample
    set, or --no-por; no symmetry); else `bfs` itself, with a note."""
    s = _Search(system, max_depth, por, timeout, max_states, progress, progress_every, por_frozen, symmetry)
    res = search(s, workers)
    if workers > 1 and s.tab is None:
        why = "symmetry reduction" if s.symmetry else "partial-order reduction"
        res.notes.append(f"one worker: the search with {why} is sequential (--no-por runs on {workers})")
    return res


def search(s: _Search, workers: int) -> SearchResult:
    """`s.run()` over `workers` processes (see the module docstring); the
    sequential search when that cannot be: one worker, no fork (or a
    daemonic process, which may not have children), a search that is not
    the plain one over a table, or the extension not built."""
    if (workers <= 1 or s.tab is None or not CAN_FORK or not visited.COMPILED
            or multiprocessing.current_process().daemon):
        return s.run()
    pk, system = s.pk, s.system
    init = pk.pack(system.initial_state())
    if pk.check(init) >= 0:
        return s.run()
    ctx = multiprocessing.get_context("fork")
    pipes = {(a, b): ctx.Pipe(duplex=False) for a in range(workers) for b in range(workers) if a != b}
    conns, procs = [], []
    try:
        for w in range(workers):
            mine, theirs = ctx.Pipe()
            sends = {b: pipes[(w, b)][1] for b in range(workers) if b != w}
            recvs = {a: pipes[(a, w)][0] for a in range(workers) if a != w}
            p = ctx.Process(target=_serve, args=(pk, workers, w, theirs, sends, recvs), daemon=True)
            p.start()
            theirs.close()
            conns.append(mine)
            procs.append(p)
        for r, w in pipes.values():
            r.close()
            w.close()
        return _coordinate(s, conns, init)
    finally:
        for c in conns:
            try:
                c.send(("stop",))
            except OSError:
                pass
        for p in procs:
            p.join(timeout=1.0)
            if p.is_alive():
                p.kill()
                p.join()


def _coordinate(s: _Search, conns: list[Connection], init: int) -> SearchResult:
    """The level loop of `_Search.run`, each level done by the workers."""
    st, pk = s.stats, s.pk
    term0 = bool(pk.terminal(init))
    for c in conns:
        c.send(("start", init, term0))
    st.states = sum(c.recv() for c in conns)
    frontier, nterm = int(not term0), int(term0)
    depth = 0

    def unknown(reason: str) -> SearchResult:
        st.depth, st.seconds = depth, time.monotonic() - s.t0
        return SearchResult("unknown", "explicit", st, s.max_depth, reason=reason)

    try:
        while (frontier or nterm) and depth < s.max_depth:
            for c in conns:
                c.send(("level", s.deadline))
            reps: list[Level] = [c.recv() for c in conns]
            if any(r.violation or r.error for r in reps):
                return _sequential(s, depth + 1)
            st.transitions += sum(r.transitions for r in reps)
            st.states += sum(r.new for r in reps)
            nterm = sum(r.terminal for r in reps)
            frontier = sum(r.new for r in reps) - nterm
            depth += 1
            if any(r.stopped for r in reps):
                return unknown(f"timeout after {s.timeout:g} s")
            now = time.monotonic()
            if s.progress and now >= s.next_report:
                st.depth, st.seconds = depth, now - s.t0
                s.progress(st)
                s.next_report = now + s.progress_every
            if st.states >= s.limit:
                return unknown(f"state limit {s.limit} reached")
            if s.deadline and now >= s.deadline:
                return unknown(f"timeout after {s.timeout:g} s")
        fired: set[int] = set()
        for c in conns:
            c.send(("fired",))
        for c in conns:
            fired |= c.recv()
    except KeyboardInterrupt:
        return unknown("interrupted")
    except (EOFError, OSError):  # a worker died (killed, out of memory)
        return _sequential(s, s.max_depth)
    st.depth, st.seconds = depth, time.monotonic() - s.t0
    return SearchResult("holds", "explicit", st, s.max_depth, exhausted=not (frontier or nterm), fired=fired)


def _sequential(s: _Search, depth: int) -> SearchResult:
    """The sequential search to `depth`, reported with the run's bound: a
    violation first found at that depth has the trace and counts `bfs`
    gives; an error in a worker is raised here as `bfs` raises it."""
    left = None if s.deadline is None else max(0.0, s.deadline - time.monotonic())
    res = bfs(s.system, depth, por=False, timeout=left, max_states=None if s.limit == sys.maxsize else s.limit,
              progress=s.progress, progress_every=s.progress_every)
    res.bound = s.max_depth
    res.stats.seconds = time.monotonic() - s.t0
    return res


