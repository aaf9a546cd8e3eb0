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
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rseqcheck.checker.limits import Limits, check_within
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


def _worker(job: Job) -> tuple[Outcome, str | None]:
    # Ctrl-C reaches a busy worker as it does `--jobs 1`: the search stops and
    # reports "interrupted" with its statistics; an idle worker ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        o, err = run_job(job)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    o.system = None  # rebuilt where needed; not worth sending back
    return o, err


def run_jobs(jobs: list[Job], workers: int) -> Iterator[tuple[Outcome, str | None]]:
    """Each job's result, in the jobs' order.  On Ctrl-C or SIGTERM (a
    KeyboardInterrupt here), the jobs not started are cancelled, those under
    way are interrupted (SIGINT) and their "interrupted" outcomes still come
    back in order, so what finished is a complete record; jobs after the
    first one that did not finish are left out.  RunOver from a job that
    started after the run's deadline ends the iteration the same way."""
    if not jobs:
        return
    ctx = multiprocessing.get_context("fork")  # Linux; the workers need no re-import
    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_quiet_signals)
    futures: list[Future] = [pool.submit(_worker, j) for j in jobs]
    try:
        k = 0
        while k < len(futures):
            try:
                got = futures[k].result()
            except KeyboardInterrupt:
                if _interrupt(pool, futures):  # first time: stop the others, then collect
                    continue
                raise
            except CancelledError:  # not started when Ctrl-C came
                raise KeyboardInterrupt from None
            except BrokenProcessPool:  # a worker was killed from outside (the OOM killer, kill -9)
                raise KeyboardInterrupt("a worker process died") from None
            yield got
            k += 1
    finally:
        unfinished = [f for f in futures if not f.done()]
        for f in futures:
            f.cancel()
        if unfinished:  # the caller stopped early, or a second Ctrl-C: end the searches under way
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _interrupt(pool: ProcessPoolExecutor, futures: list[Future]) -> bool:
    """Cancel what has not started and send SIGINT to the workers, once;
    False when already done (a second Ctrl-C: give up at once)."""
    if getattr(pool, "_rseqcheck_interrupted", False):
        return False
    pool._rseqcheck_interrupted = True  # type: ignore[attr-defined]
    for f in futures:
        f.cancel()
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive() and proc.pid:
            os.kill(proc.pid, signal.SIGINT)
    return True


def _quiet_signals() -> None:
    """Workers leave Ctrl-C and SIGTERM/SIGHUP to the main process, which
    reports what finished and then ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)
