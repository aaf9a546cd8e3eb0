"""Resource limits of `verify`: time, states and memory, enforced wherever
the time goes (loading, building, compiling the IR, every engine, the
[outcomes] check, rendering and saving counterexamples), not only between
search levels.

A Watchdog thread watches the clock and the process's resident memory; when
a limit is passed it interrupts Z3 (Z3_interrupt: a running check returns
"canceled") and sends SIGALRM to the main thread, whose handler raises
LimitHit there.  LimitHit is a BaseException, so `except Exception` in the
engines (or the "internal error" net of checker.cross) cannot swallow it.
`--max-states` is checked in the engines' progress callback, which also
keeps the statistics reported with the limit (states, depth, seconds).

A MemoryError (e.g. under `prlimit --as`) is a resource limit too: exit 3
with the statistics so far, not a spec error.

`check_size` refuses, before anything is built, a spec whose size (threads
x contexts each x instructions) is beyond what can be built in reasonable
time and memory, and says what to reduce.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import click
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.model.errors import SpecError

# Largest accepted threads x (1 + max_nesting) x instructions.  The bundled
# specs reach 963; 32 threads of 6 instructions (18,624) build in 4 s and
# compile in about 50 s; past this bound building alone takes minutes and GBs.
MAX_SIZE = 60_000
POLL = 0.05  # seconds between the watchdog's looks at the clock and memory


class LimitHit(BaseException):
    """A resource limit was reached (message: the reason, as reported)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RunOver(Exception):
    """The whole run's time limit (--total-timeout) passed before a spec
    started: it and the specs after it are not checked."""


@dataclass
class Limits:
    timeout: float | None = None  # seconds per spec, everything included
    max_states: int | None = None
    max_memory: int | None = None  # bytes of resident memory
    total: float | None = None  # --total-timeout: seconds for the whole run
    deadline: float | None = None  # when the run ends (time.time(): the same clock in every worker)
    cut: bool = False  # for_spec() shortened `timeout` to what is left of the run

    def __post_init__(self) -> None:
        # `--timeout nan` or `inf` must not turn the limit off by accident
        if self.timeout is not None and not (self.timeout > 0 and math.isfinite(self.timeout)):
            raise ValueError(f"timeout must be a positive number of seconds, not {self.timeout!r}")

    def start_run(self) -> Limits:
        """The limits with the run's deadline set from now."""
        return replace(self, deadline=time.time() + self.total) if self.total else self

    def for_spec(self) -> Limits:
        """The limits of a spec that starts now: its timeout cut to what is
        left of the run's.  RunOver when nothing is left."""
        if self.deadline is None:
            return self
        left = self.deadline - time.time()
        if left <= 0:
            raise RunOver(self.run_over())
        if self.timeout is not None and self.timeout <= left:
            return self
        return replace(self, timeout=left, cut=True)

    def run_over(self) -> str:
        return f"the run's time limit (--total-timeout {self.total:g} s) was reached"


def grace(timeout: float) -> float:
    """How long after `timeout` the watchdog steps in."""
    return min(1.0, 0.25 + 0.1 * timeout)


def rss() -> int:
    """Resident memory in bytes of this process and every process below it
    (`verify --workers`' searchers, a swarm's pool, a compiler): what the
    run holds.  Pages a forked child still shares with its parent count
    in both, so this errs high.  0 where /proc cannot say."""
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo, seen = 0, [os.getpid()], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
            # each thread's children (Linux 3.5+ with CONFIG_PROC_CHILDREN)
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError, IndexError):  # gone meanwhile, or no such file here
            continue
    return total


def _interrupt_z3() -> None:
    z3 = sys.modules.get("z3")
    if z3 is not None:
        try:
            z3.main_ctx().interrupt()
        except Exception:  # noqa: BLE001  (best effort: the SIGALRM still comes)
            pass


class Watchdog:
    """`with Watchdog(limits) as wd:` ... LimitHit is raised in the main
    thread when a limit is passed; `wd.progress(user_progress)` is the
    callback to give the engines (keeps the last statistics, checks
    max_states)."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.last = Stats()
        self.t0 = time.monotonic()
        self.reason: str | None = None
        self._lock = threading.RLock()  # reentrant: the SIGALRM handler runs in the main thread, maybe inside a locked block
        self._armed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old = None
        self._old_hook = None
        self._raised = False  # a LimitHit is on its way up the main thread
        self._main = threading.main_thread().ident

    # ------------------------------------------------------------ context

    def __enter__(self) -> Watchdog:
        self.t0 = time.monotonic()
        lim = self.limits
        if (lim.timeout or lim.max_memory) and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGALRM, self._on_alarm)
            self._old_hook = sys.unraisablehook
            sys.unraisablehook = self._unraisable
            self._armed = True
            self._thread = threading.Thread(target=self._watch, name="rseqcheck-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        try:
            with self._lock:
                self._armed = False  # a SIGALRM still on its way now does nothing
        finally:  # even if the one LimitHit lands right here: the caller catches it
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
                signal.signal(signal.SIGALRM, self._old if self._old is not None else signal.SIG_DFL)
                sys.unraisablehook = self._old_hook or sys.__unraisablehook__

    def _on_alarm(self, signum, frame) -> None:
        with self._lock:
            fire = self._armed and self.reason is not None and not self._raised
            if fire:
                self._raised = True
        if fire:
            assert self.reason is not None
            raise LimitHit(self.reason)

    def _unraisable(self, u) -> None:
        """The SIGALRM landed in a finalizer (a Z3 object's __del__), where
        Python prints and drops exceptions: forget that one (no "Exception
        ignored" traceback), and the watchdog sends the next."""
        if isinstance(u.exc_value, LimitHit):
            with self._lock:
                self._raised = False
            return
        (self._old_hook or sys.__unraisablehook__)(u)

    def _watch(self) -> None:
        lim = self.limits
        # The engines check their own deadline between chunks of work and then
        # report exact statistics; the watchdog stops what does not check
        # (building, compiling, a long Z3 call) a moment later.
        deadline = self.t0 + lim.timeout + grace(lim.timeout) if lim.timeout else None
        while True:  # a look at once: a process already past --max-memory stops even a short search
            reason = None
            if deadline is not None and time.monotonic() >= deadline:
                reason = f"timeout after {lim.timeout:g} s"
            elif lim.max_memory and rss() > lim.max_memory:
                reason = f"memory limit of {lim.max_memory / 2**20:,.0f} MiB reached"
            if reason is not None:
                self.trip(reason)
                break
            if self._stop.wait(POLL):
                break
        while not self._stop.wait(POLL):  # until the main thread has it: a LimitHit can be dropped (see _unraisable)
            with self._lock:
                again = self._armed and not self._raised
            if again:
                _interrupt_z3()
                signal.pthread_kill(self._main, signal.SIGALRM)

    def trip(self, reason: str) -> None:
        """Stop the main thread's work with LimitHit(reason)."""
        with self._lock:
            if not self._armed or self.reason is not None:
                return
            self.reason = reason
        _interrupt_z3()
        signal.pthread_kill(self._main, signal.SIGALRM)

    # ----------------------------------------------------------- progress

    def progress(self, user: Callable[[Stats], None] | None) -> Callable[[Stats], None]:
        def report(st: Stats) -> None:
            self.last = replace(st)
            if self.limits.max_states and st.states > self.limits.max_states:
                raise LimitHit(f"state limit of {self.limits.max_states:,} reached")
            if user:
                user(st)

        return report


REPEAT = 1.0  # seconds: a SIGINT this soon after the last one is the same Ctrl-C


class CtrlC:
    """`with CtrlC():` SIGINT raises KeyboardInterrupt as ever, except within
    REPEAT seconds of the last one raised: timeout(1) sends SIGINT to the
    process and then to its process group (a terminal, to the group), and
    the second copy must not land in the report of the first (an engine
    catches the first and reports "interrupted").  A Ctrl-C after that
    interrupts again."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.old = None
        self.armed = False

    def __enter__(self) -> CtrlC:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return self  # SIGINT ignored (a background job) or handled by someone else: left alone
        try:
            self.old = signal.signal(signal.SIGINT, self._on_sigint)
            self.armed = True
        except ValueError:  # not the main thread
            pass
        return self

    def __exit__(self, *exc) -> None:
        if self.armed:
            signal.signal(signal.SIGINT, self.old)

    def _on_sigint(self, signum, frame) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < REPEAT:
            return
        self.last = now
        raise KeyboardInterrupt


def unknown_result(engine: str, bound: int, reason: str, stats: Stats, t0: float) -> SearchResult:
    st = replace(stats, seconds=time.monotonic() - t0)
    return SearchResult("unknown", engine if engine != "all" else "explicit", st, bound, reason=reason)


# ------------------------------------------------------------------ size


def spec_size(spec) -> tuple[int, str]:
    """(size, how it is made up) of a loaded spec (model.spec.Spec)."""
    segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
    n_ins = sum(len(s.instrs) for s in segs)
    ctx = 1 + spec.env.max_nesting
    size = len(spec.threads) * ctx * n_ins
    how = (f"{len(spec.threads)} threads x {ctx} contexts each (1 + max_nesting {spec.env.max_nesting}) "
           f"x {n_ins} instructions in {len(segs)} code blocks = {size:,}")
    return size, how


def check_size(spec) -> None:
    size, how = spec_size(spec)
    if size > MAX_SIZE:
        line = spec.threads[0].line if spec.threads else None
        raise SpecError(spec.path, line, f"spec too large to build: {how}, more than {MAX_SIZE:,}; "
                        "reduce the number of threads, max_nesting or the code")


# ------------------------------------------------------------- --max-memory


class MemorySize(click.ParamType):
    """`512M`, `2G`, `1.5G`, `800000K`, or a number of MiB."""

    name = "SIZE"
    UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        s = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = self.UNITS.get(s[-1:], None)
        num = s[:-1] if unit else s
        try:
            x = float(num)
        except ValueError:
            self.fail(f"{value!r} is not a size such as 512M or 2G", param, ctx)
        n = x * (unit or 2**20)
        if not (math.isfinite(n) and n >= 2**20):
            self.fail(f"{value!r}: give at least 1M", param, ctx)
        return int(n)


class Seconds(click.ParamType):
    """A positive, finite number of seconds (`nan` and `inf` are refused:
    they would turn the limit off)."""

    name = "SECONDS"

    def convert(self, value, param, ctx):
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not (math.isfinite(x) and x > 0):
            self.fail(f"{value!r}: give a positive, finite number of seconds", param, ctx)
        return x


# ------------------------------------------------------------- one spec


def check_within(path: str, limits: Limits, run: Callable, save: Callable, progress, engine: str,
                 depth: int | None):
    """run(progress) -> Outcome, then save(outcome) when it has a
    counterexample, all under the limits.  Returns (outcome, output error
    message or None).  A limit reached turns the outcome into "unknown" with
    the reason and the statistics so far."""
    wd = Watchdog(limits)
    o = None
    save_error = None
    hit = None
    if limits.cut:  # the time that ran out was the run's, not the spec's: say so
        o, save_error = check_within(path, replace(limits, cut=False), run, save, progress, engine, depth)
        r = o.result
        if r is not None and r.verdict == "unknown" and r.reason:
            o.result = replace(r, reason=re.sub(r"^timeout after \S+ s", limits.run_over(), r.reason))
        return o, save_error
    try:
        with wd:
            o = run(wd.progress(progress))
            if o.graph is not None:
                try:
                    save(o)
                except OSError as e:
                    save_error = f"{e.filename or path}: cannot write the counterexample: {e.strerror or e}"
    except LimitHit as e:
        hit = e.reason
    except MemoryError:
        hit = "out of memory"
    if hit is None:
        return o, save_error
    if o is not None and o.result is not None:  # the limit came while rendering or saving
        o.result = replace(o.result, verdict="unknown", reason=f"{hit} while saving the counterexample")
        o.graph, o.more, o.files = None, [], []
        return o, save_error
    return _unknown_outcome(path, hit, wd, engine, depth), save_error


def _unknown_outcome(path: str, reason: str, wd: Watchdog, engine: str, depth: int | None):
    from rseqcheck.checker.verify import Outcome
    from rseqcheck.model.spec import load_spec

    out = Outcome(path)
    try:
        out.spec = load_spec(path)
    except SpecError as e:
        out.error = str(e)
        return out
    bound = depth if depth is not None else out.spec.depth
    out.result = unknown_result(engine, bound, reason, wd.last, wd.t0)
    return out
