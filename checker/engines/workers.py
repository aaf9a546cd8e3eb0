"""The plain breadth-first search on several cores.

The states are partitioned: worker w owns the states whose `Table.owner`
is w (a hash of the variables one thread alone writes, `choose_part`, so
that the other threads' steps keep a state with its owner) and keeps them,
with their parents' global ids, in its own visited table
(checker/engines/visited.py).  The first levels are searched on one
process; at the first level of `HANDOFF` states the workers are forked and
each adopts its share of what was found.  Then level by level, each worker
expands the states of the level it owns; a successor it owns goes straight
into its table, any other is appended to the owner's outbox (the packed
state and its parent's id, as bytes), which is sent whenever it fills, so
the workers exchange while they work; a level ends when each has sent the
rest and an end marker.  What each table gained is its share of the next
level.  A successor by an action that can break a property or end the run
is checked by the worker that found it, whichever owns it (a known state
cannot fail a check: the search would have stopped when it was new), and a
terminal one is sent marked as such, so its owner enters it without
expanding it.

Every level's set of states is the sequential search's, so a run that ends
without a violation has its states, transitions, depth and fired actions.
A violation is found at the same depth d as the sequential search finds
its first; the sequential search is then run to depth d, so the trace,
counts and fired actions reported are exactly those of `bfs` (the
speed-up is for proofs; a counterexample costs a sequential search to its
depth on top).

`Partition` is one worker's share and knows nothing of the transport: a
level is `expand()`, which hands over the bytes for each other worker
(`outgoing` while it runs, the rest at its end), and `ingest()` of the
bytes the others sent.  `search` runs one partition per forked process and
moves the bytes through pipes, worker to worker; a cluster runner (Dask
actors, say) would move the same bytes between machines.  Engines stay
rseq-free: this reads only the packed engine.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from rseqcheck.checker.engines import visited
from rseqcheck.checker.engines.compile import Packed
from rseqcheck.checker.engines.explicit import _CHUNK, _ROOT, HandOff, Progress, SearchResult, _Search, bfs
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
    size: int = 0  # states in its table
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
    part: int | None = None  # the bits that choose a state's owner (`choose_part`); None: all
    tab: object = field(init=False)
    term: Terminals = field(init=False)

    def __post_init__(self) -> None:
        self.tab = visited.Table(self.pk.layout.bits, self.workers, self.me, self.part)
        self.term = Terminals(self.tab)
        self.expand_range, _ = self.pk.with_table(self.tab, self.term)
        self.lo = self.hi = 0

    def start(self, init: int, terminal: bool) -> None:
        """Enter the initial state, if it is this worker's."""
        if self.tab.owner(init) == self.me:
            self.tab.add(init, _ROOT)
            if terminal:
                self.term.add(0)
        self.lo, self.hi = 0, len(self.tab)

    def take_over(self, tab, term: set[int], frontier: range) -> None:
        """Go on from a sequential search: enter the states of its table
        `tab` that are this worker's (its parent links are not kept: a
        violation is traced by the sequential search again), those of its
        level `frontier` last, as this worker's level."""
        for lo, hi in ((0, frontier.start), (frontier.start, frontier.stop)):
            self.lo = len(self.tab)
            self.tab.adopt(tab, lo, hi)
            for i in term:
                if lo <= i < hi and (j := self.tab.index(tab.get(i))) >= 0:
                    self.term.add(j)
        self.hi = len(self.tab)

    def expand(self, deadline: float | None = None, between: Callable[[], None] | None = None
               ) -> tuple[Level, list[bytes]]:
        """Expand this worker's states of the level: the report so far and,
        per worker, the batch for it (what `outgoing` has not handed over
        yet, and the terminal states).  `between` runs after each chunk of
        states: a transport sends and takes in batches there, so that the
        workers exchange while they work."""
        rep = Level()
        tab, term = self.tab, self.term
        self.nterm = len(term)
        try:
            for lo in range(self.lo, self.hi, _CHUNK):
                rep.transitions += self.expand_range(lo, min(lo + _CHUNK, self.hi))
                if deadline is not None and time.monotonic() >= deadline:
                    rep.stopped = "deadline"
                    break
                if between is not None:
                    between()
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

    def outgoing(self, least: int) -> dict[int, bytes]:
        """The batches of the outboxes holding at least `least` bytes."""
        return {w: _pack_batch(self.tab.take(w), b"") for w in range(self.workers)
                if w != self.me and self.tab.pending(w) >= least}

    def ingest(self, batch: bytes) -> None:
        """Enter a batch another worker sent: its states are next-level
        ones, entered after this level's range.  A terminal one may have
        come already, unmarked, in a batch sent while the level ran (the
        sender routes a successor before it tests it): marked then."""
        plain, marks = _unpack_batch(batch)
        tab = self.tab
        tab.add_batch(plain)
        rec = (tab.words + 1) * 8
        for at in range(0, len(marks), rec):
            first, n = tab.add_batch(marks[at : at + rec])
            j = first if n else tab.index(int.from_bytes(marks[at : at + rec - 8], "little"))
            if j >= self.hi:  # entered in this level; an older state was never terminal
                self.term.add(j)

    def receive(self, rep: Level, batches: list[bytes]) -> Level:
        """Enter the last batches of the level; the next level is what the
        table gained since `expand` began."""
        for b in batches:
            if b:
                self.ingest(b)
        self.lo, self.hi = self.hi, len(self.tab)
        rep.new, rep.size = self.hi - self.lo, self.hi
        rep.terminal = len(self.term) - self.nterm
        return rep

    def fired(self) -> set[int]:
        return self.pk.fired()


def choose_part(system: System, pk: Packed, workers: int, init: int, sample: int = 20_000) -> int | None:
    """The bits that choose a state's owner: those of the variables only
    one process writes, for the process whose bits spread the states of
    random walks (`sample` steps) most evenly among the workers (within
    10 % of an even share), so that the other processes' steps keep a
    state with its owner; None (the whole state) if none does.  Only the
    speed depends on it: any choice gives the same states."""
    writers: dict[int, set[str]] = {}
    idx = system.index()
    for a, (_, w) in zip(system.actions, pk.rw):
        for v in w:
            writers.setdefault(idx[v], set()).add(a.proc)
    L = pk.layout
    masks: dict[str, int] = {}
    for vi, procs in writers.items():
        if len(procs) == 1:
            p = next(iter(procs))
            masks[p] = masks.get(p, 0) | (L.mask[vi] << L.shift[vi])
    if not masks:
        return None
    # random walks, not the first levels: their states are few threads' starts
    rng = random.Random(0)
    seen: set[int] = set()
    for _ in range(sample // 100):
        s = init
        for _ in range(100):
            seen.add(s)
            out: list = []
            pk.succ(s, out)
            if not out:
                break
            s = rng.choice(out)[1]
    best: tuple[float, int] | None = None
    for _, m in sorted(masks.items()):
        tab = visited.Table(L.bits, workers, 0, m)
        counts = [0] * workers
        for s in seen:
            counts[tab.owner(s)] += 1
        share = max(counts) / len(seen)
        if share <= 1.1 / workers and (best is None or share < best[0]):
            best = (share, m)
    return best[1] if best else None


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


_STREAM = 1 << 20  # bytes of an outbox sent while the level goes on
HANDOFF = 1 << 14  # the workers take over at the first level of this many states


def _serve(pk: Packed, workers: int, me: int, part: int | None, prefix: _Search, frontier: range, conn: Connection,
           sends: dict[int, Connection], recvs: dict[int, Connection]) -> None:
    """A worker process: one `Partition`, driven by the coordinator's
    messages.  Batches go straight to the other workers while the level is
    expanded, each peer's through its own pipe and sending thread (so no
    two workers wait on each other); an empty message ends a peer's level."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C
    try:
        mine = Partition(pk, workers, me, part)
        mine.take_over(prefix.tab, prefix.term, frontier)
        queues: dict[int, queue.SimpleQueue] = {w: queue.SimpleQueue() for w in sends}
        for w, q in queues.items():
            threading.Thread(target=_sender, args=(q, sends[w]), daemon=True).start()
        while True:
            msg = conn.recv()
            if msg[0] == "level":
                mine.tab.reserve(msg[2])
                conn.send(_level(mine, msg[1], queues, recvs))
            elif msg[0] == "fired":
                conn.send(mine.fired())
            else:
                return
    except Exception:  # the coordinator reruns the sequential search, which reports it
        conn.send(Level(error=traceback.format_exc()))


def _level(mine: Partition, deadline: float | None, queues: dict[int, queue.SimpleQueue],
           recvs: dict[int, Connection]) -> Level:
    """One level in a worker process: expand, sending full outboxes and
    taking in what arrives between chunks; then the last batches and an
    end marker each way."""
    ended: set[int] = set()

    def take_in(block: bool) -> None:
        while len(ended) < len(recvs):
            ready = wait([c for w, c in recvs.items() if w not in ended], None if block else 0)
            if not ready:
                return
            for c in ready:
                b = c.recv_bytes()  # type: ignore[union-attr]
                if b:
                    mine.ingest(b)
                else:
                    ended.add(next(w for w, x in recvs.items() if x is c))

    def between() -> None:
        for w, b in mine.outgoing(_STREAM).items():
            queues[w].put(b)
        take_in(False)

    try:
        rep, out = mine.expand(deadline, between)
    except Exception:  # the level still ends for the others; the coordinator reruns the sequential search
        rep, out = Level(error=traceback.format_exc()), [_pack_batch(b"", b"")] * mine.workers
    for w, q in queues.items():
        q.put(out[w])
        q.put(b"")
    take_in(True)
    return mine.receive(rep, [])


def _sender(q: queue.SimpleQueue, c: Connection) -> None:
    while True:
        c.send_bytes(q.get())


def bfs_workers(system: System, max_depth: int, workers: int, por: bool = True, timeout: float | None = None,
                max_states: int | None = None, progress: Progress | None = None, progress_every: float = 1.0,
                por_frozen: bool = False, symmetry: bool = False) -> SearchResult:
    """`explicit.bfs` on `workers` processes when its search is the plain
    one (no reduction that prunes: partial-order reduction finds no ample
    set, or --no-por; no symmetry); else `bfs` itself, with a note."""
    s = _Search(system, max_depth, por, timeout, max_states, progress, progress_every, por_frozen, symmetry)
    res = search(s, workers)
    why = ""
    if workers <= 1:
        pass
    elif s.symmetry:
        why = "the search with symmetry reduction is sequential"
    elif s.por:
        why = f"the search with partial-order reduction is sequential (--no-por runs on {workers})"
    elif not visited.COMPILED:
        why = "checker/engines/_visited.c is not built (pip install needs a C compiler)"
    elif not CAN_FORK:
        why = "this platform cannot fork"
    if why:
        res.notes.append(f"one worker: {why}")
    return res


def search(s: _Search, workers: int) -> SearchResult:
    """`s.run()` over `workers` processes (see the module docstring); the
    sequential search when that cannot be: one worker, no fork (or a
    daemonic process, which may not have children), a search that is not
    the plain one over a table, or the extension not built."""
    if (workers <= 1 or s.tab is None or not CAN_FORK or not visited.COMPILED
            or multiprocessing.current_process().daemon):
        return s.run()
    # the first levels on one process: a small search never forks
    s.handoff = HANDOFF
    try:
        res = s.run()
        res.notes.append(f"one worker: no level reached {HANDOFF:,} states, where the workers start")
        return res
    except HandOff as h:
        frontier = h.frontier
    pk, system = s.pk, s.system
    part = choose_part(system, pk, workers, pk.pack(system.initial_state()))
    ctx = multiprocessing.get_context("fork")
    pipes = {(a, b): ctx.Pipe(duplex=False) for a in range(workers) for b in range(workers) if a != b}
    conns, procs = [], []
    try:
        for w in range(workers):
            mine, theirs = ctx.Pipe()
            sends = {b: pipes[(w, b)][1] for b in range(workers) if b != w}
            recvs = {a: pipes[(a, w)][0] for a in range(workers) if a != w}
            p = ctx.Process(target=_serve, args=(pk, workers, w, part, s, frontier, theirs, sends, recvs), daemon=True)
            p.start()
            theirs.close()
            conns.append(mine)
            procs.append(p)
        for r, w in pipes.values():
            r.close()
            w.close()
        res = _coordinate(s, conns, [p.sentinel for p in procs], frontier)
        n = len(frontier)
        res.notes.append(f"{workers} workers from depth {s.depth} (a level of {n:,} state{'s' if n != 1 else ''})"
                         + ("; the trace is the sequential search's" if res.verdict == "violation" else ""))
        return res
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


def _gather(conns: list[Connection], sentinels: list[int]) -> list:
    """One message from each worker, in worker order; EOFError as soon as
    a worker process is gone (the others may be waiting for it)."""
    got: dict[int, object] = {}
    while len(got) < len(conns):
        for r in wait([c for i, c in enumerate(conns) if i not in got] + sentinels):
            if r in sentinels:
                raise EOFError("a worker exited")
            i = conns.index(r)  # type: ignore[arg-type]
            got[i] = conns[i].recv()
    return [got[i] for i in range(len(conns))]


def _coordinate(s: _Search, conns: list[Connection], sentinels: list[int], level: range) -> SearchResult:
    """The level loop of `_Search.run` from where the sequential search
    `s` handed over (`level`), each level done by the workers."""
    st = s.stats
    st.states = len(s.tab)
    nterm = sum(i in s.term for i in level)
    frontier = len(level) - nterm
    depth = s.depth

    def unknown(reason: str) -> SearchResult:
        st.depth, st.seconds = depth, time.monotonic() - s.t0
        return SearchResult("unknown", "explicit", st, s.max_depth, reason=reason)

    room = 0  # the entries each worker's index is to hold through the next level
    try:
        while (frontier or nterm) and depth < s.max_depth:
            for c in conns:
                c.send(("level", s.deadline, room))
            reps: list[Level] = _gather(conns, sentinels)
            # all grow their index at the same level: none waits for another's growth
            room = max(r.size + 2 * r.new for r in reps)
            if any(r.error for r in reps):  # the sequential search raises it, or finds the worker at fault
                return _sequential(s, s.max_depth)
            if any(r.violation for r in reps):
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
        for f in _gather(conns, sentinels):
            fired |= f
    except KeyboardInterrupt:
        return unknown("interrupted")
    except (EOFError, OSError):  # a worker died: killed, or out of memory
        return unknown("a worker process died (killed, or out of memory?)")
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


