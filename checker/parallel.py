"""Many specs on several cores (`verify --jobs N`), with the results and
their order those of `--jobs 1`.

Each spec is one job: loading, checking, saving its counterexample, under
its own limits (checker/limits.py), in a worker process.  Results come back
in the order the specs were given, each as soon as every earlier one is in,
so the output reads the same whatever the number of workers.  A worker
returns the outcome without its IR (`system`), which the caller does not
need and which would cost more to send back than to build.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rseqcheck.checker.limits import REPEAT, Limits, check_within
from rseqcheck.checker.verify import Outcome, save_counterexample


@dataclass(frozen=True)
class Job:
    """What a worker needs to check one spec: all picklable."""

    path: str
    stem: str  # the name its counterexamples are saved under
    out_dir: str
    limits: Limits
    engine: str  # explicit | bmc | induction | all
    depth: int | None
    por: bool
    kw: dict[str, Any] = field(default_factory=dict)  # max_states, proposal, por_frozen, ...


def default_jobs() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_job(job: Job, progress: Callable | None = None, saving: bool = True) -> tuple[Outcome, str | None]:
    """Check one spec and save its counterexample (unless not `saving`):
    (outcome, output error).  RunOver (checker/limits.py) when the run's
    --total-timeout passed before the spec could start."""
    from rseqcheck.checker.cross import check_all, check_one

    limits = job.limits.for_spec()

    def run(prog):
        if job.engine == "all":
            return check_all(job.path, depth=job.depth, por=job.por, timeout=limits.timeout, progress=prog,
                             **job.kw)
        return check_one(job.path, engine=job.engine, depth=job.depth, por=job.por, timeout=limits.timeout,
                         progress=prog, **job.kw)

    def save(o: Outcome) -> None:
        if saving:
            save_counterexample(o, Path(job.out_dir), job.stem)

    return check_within(job.path, limits, run, save, progress, job.engine, job.depth)


_STOP = None  # in a worker: the run's stop event (set on Ctrl-C: start no new job)


def _worker(job: Job) -> tuple[Outcome, str | None] | None:
    """run_job in a worker process; None when the job did not run: the run
    was stopped before it started, or Ctrl-C came outside the search
    (loading, compiling), which leaves the spec not checked as with --jobs 1."""
    # Ctrl-C reaches a busy worker as it does `--jobs 1`: the search stops and
    # reports "interrupted" with its statistics; an idle worker ignores it.
    # Once only: a terminal and timeout(1) send SIGINT to the whole process
    # group, and the main process sends its own; a second one must not land
    # in the engine's report of the first.
    signal.signal(signal.SIGINT, _interrupt_once)
    try:
        if _STOP is not None and _STOP.is_set():  # after the handler: a later SIGINT is not missed
            return None
        o, err = run_job(job)
    except KeyboardInterrupt:
        return None
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    o.system = None  # rebuilt where needed; not worth sending back
    return o, err


def _interrupt_once(signum, frame) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def run_jobs(jobs: list[Job], workers: int) -> Iterator[tuple[Outcome, str | None]]:
    """Each job's result, in the jobs' order.  On Ctrl-C (SIGINT here, or an
    "interrupted" outcome from a worker) the jobs not started are cancelled
    and those under way are interrupted (SIGINT); every result that came
    back is still yielded in order, the interrupted ones with their
    statistics, the jobs that did not run are left out (the caller lists
    them as not checked), and the iteration then ends with
    KeyboardInterrupt.  A SIGINT within REPEAT seconds of the first is the
    same Ctrl-C (timeout(1) sends it to the process and to its group); a
    later one, or SIGTERM/SIGHUP (a KeyboardInterrupt from the caller's
    handler) while collecting, gives up at once: the searches under way are
    ended.  RunOver from a job that started after the run's deadline ends
    the iteration the same way."""
    if not jobs:
        return
    ctx = multiprocessing.get_context("fork")  # Linux; the workers need no re-import
    stop = ctx.Event()
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_quiet_signals,
                               initargs=(stop,))
    futures: list[Future] = [pool.submit(_worker, j) for j in jobs]
    first: list[float] = []  # when the run was told to stop

    def halt() -> bool:
        """Stop the run, once; False when it already was."""
        if first:
            return False
        first.append(time.monotonic())
        _interrupt(pool, futures, stop)
        return True

    def on_sigint(signum, frame) -> None:
        if not halt() and time.monotonic() - first[0] > REPEAT:
            raise KeyboardInterrupt  # a second Ctrl-C: give up

    took, old = _take_sigint(on_sigint)
    try:
        k = 0
        while k < len(futures):
            try:
                got = futures[k].result()
            except KeyboardInterrupt:  # SIGTERM or SIGHUP (verify's handler)
                if halt():  # first time: stop the others, then collect
                    continue
                raise
            except CancelledError:  # not started when Ctrl-C came
                got = None
            except BrokenProcessPool:  # a worker was killed from outside (the OOM killer, kill -9)
                raise KeyboardInterrupt("a worker process died") from None
            k += 1
            if got is None:  # did not run: stopped first, or interrupted outside the search
                halt()
                continue
            if got[0].interrupted:  # a worker's SIGINT that this process did not get
                halt()
            yield got
        if first:
            raise KeyboardInterrupt
    finally:
        if took:
            signal.signal(signal.SIGINT, old)
        unfinished = [f for f in futures if not f.done()]
        for f in futures:
            f.cancel()
        if unfinished:  # the caller stopped early, or a second Ctrl-C: end the searches under way
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.kill()  # they ignore SIGTERM (_quiet_signals)
        pool.shutdown(wait=True, cancel_futures=True)


def _take_sigint(handler) -> tuple[bool, Any]:
    """Install `handler` for SIGINT unless SIGINT is ignored (a background
    job) or this is not the main thread: (installed, the previous one)."""
    old = signal.getsignal(signal.SIGINT)
    if old in (signal.SIG_IGN, None):
        return False, old
    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return False, old
    return True, old


def _interrupt(pool: ProcessPoolExecutor, futures: list[Future], stop) -> None:
    """Cancel what has not started, tell the workers to start nothing new
    and send SIGINT to them (the busy ones stop their search)."""
    stop.set()  # before the SIGINT: a worker that misses it sees this (see _worker)
    for f in futures:
        f.cancel()
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive() and proc.pid:
            try:
                os.kill(proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass


def _quiet_signals(stop=None) -> None:
    """Workers leave Ctrl-C and SIGTERM/SIGHUP to the main process, which
    reports what finished and then ends them (SIGINT to stop a search,
    SIGKILL when it gives up).  A SIGTERM to the process group (timeout(1),
    a CI runner) used to kill the workers outright, and the results that
    had come back with them."""
    global _STOP
    _STOP = stop
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
