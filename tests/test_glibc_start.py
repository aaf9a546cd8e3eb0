"""glibc's registration of a pthread's rseq area (model/glibc.py) and the
`abort` end.  Expectations derived by hand from glibc
nptl/pthread_create.c (__pthread_create_2_1: ATTR_FLAG_DO_RSEQ iff the
creating thread's cpu_id >= 0; start_thread: a failed registration with
DO_RSEQ is __libc_fatal -> abort) and kernel/seccomp.c:__seccomp_filter."""

from __future__ import annotations

import pytest
from rseqcheck.model.errors import SpecError

from tests.util import Space, system_of


def spec(t0: str, t1: str, *, filt: str = '"errno"', filt0: str | None = None, rules: str = "", env: str = "", extra: str = "") -> str:
    return f'''[spec]
title = "t"
preset = "linux-6.18"
[rules]
{rules}
[environment]
{env}
[thread.T0]
seccomp = {{ rseq = {filt0 or filt} }}
code = """
{t0}
"""
[thread.T1]
seccomp = {{ rseq = {filt} }}
code = """
{t1}
"""
{extra}
[check]
properties = ["no-unexpected-kill"]
depth = 60
'''


CLONE = "        clone T1\n        exit"
RUN = "        store ran, 1\n        exit"


def ends(sp: Space) -> set[str]:
    return {d["killed"] for d in sp.where() if d["killed"] != "NONE"} | (
        {"exit"} if sp.any(**{"T0.k": "DEAD", "T1.k": "DEAD", "killed": "NONE"}) else set())


def test_refused_registration_aborts_before_the_thread_runs(tmp_path):
    sp = Space(system_of(tmp_path, spec(CLONE, RUN)))
    assert ends(sp) == {"SIGABRT"}
    assert not sp.any(ran="1")
    assert sp.fired('glibc start_thread: rseq(&self->rseq_area, 32, 0, RSEQ_SIG) -> seccomp: -EPERM; '
                    '__libc_fatal("Fatal glibc error: rseq registration failed") -> abort(): SIGABRT, the process ends')


def test_seccomp_kill_in_start_thread(tmp_path):
    sp = Space(system_of(tmp_path, spec(CLONE, RUN, filt='"kill"')))
    assert ends(sp) == {"SIGSYS"} and not sp.any(ran="1")


def test_rule_continue_runs_the_thread_unregistered(tmp_path):
    t1 = "        load %r0, rseq.cpu_id\n        store ran, 1\n        exit"
    sp = Space(system_of(tmp_path, spec(CLONE, t1, filt='"errno:ENOSYS"',
                                        rules='"glibc.thread_rseq_failure" = "continue"')))
    assert ends(sp) == {"exit"} and sp.any(ran="1")
    # every state where T1 runs its code: unregistered, cpu_id REGISTRATION_FAILED
    running = sp.where(**{"T1.glibc_start": "0", "T1.k": "USER"})
    assert running and all(d["T1.rseq"] == "none" and d["T1.rseq.cpu_id"] == "-2" for d in running)


def test_parent_unregistered_means_no_registration_and_no_abort(tmp_path):
    # (T0's own filter must let its unregistration through: with T1's it
    # fails with -EPERM, T0 stays registered and the clone aborts)
    t0 = "        rseq_unregister\n        clone T1\n        exit"
    assert ends(Space(system_of(tmp_path, spec(t0, RUN)))) == {"SIGABRT"}
    sp = Space(system_of(tmp_path, spec(t0, RUN, filt0='"allow"'), "u.toml"))
    assert ends(sp) == {"exit"} and sp.any(ran="1")
    assert not sp.any(**{"T1.glibc_start": "1"})


def test_allowed_filter_keeps_the_thread_registered(tmp_path):
    sp = Space(system_of(tmp_path, spec(CLONE, RUN, filt='"allow"')))
    assert ends(sp) == {"exit"}
    assert not any(v.name == "T1.glibc_start" for v in sp.system.vars)


def test_trap_filter_in_start_thread_is_refused(tmp_path):
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, spec(CLONE, RUN, filt='"trap"'))
    assert "traps rseq() (SIGSYS) inside glibc's start_thread" in e.value.message


def test_abort_instruction(tmp_path):
    sp = Space(system_of(tmp_path, spec("        abort", RUN, filt='"allow"')))
    assert ends(sp) == {"SIGABRT"}
    assert sp.fired("abort: abort() -> SIGABRT, the process ends")
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, spec("        abort", RUN, filt='"allow"',
                                 extra='[handler.SIGABRT]\ncode = """\n        sigreturn\n"""'))
    assert "abort with a [handler.SIGABRT] is not modelled" in e.value.message


def test_pthread_of_an_unregistered_parent_is_not_registered(tmp_path):
    # no filter at all: DO_RSEQ alone decides (the parent unregistered glibc's area)
    t0 = "        rseq_unregister\n        clone T1\n        exit"
    sp = Space(system_of(tmp_path, spec(t0, "        load %r0, rseq.cpu_id\n        exit", filt='"allow"')))
    started = sp.where(**{"T1.k": "USER"})
    assert started and all(d["T1.rseq"] == "none" and d["T1.rseq.cpu_id"] == "-2" for d in started)
    # registered parent: the child is registered by glibc
    sp = Space(system_of(tmp_path, spec(CLONE, "        load %r0, rseq.cpu_id\n        exit", filt='"allow"'), "u.toml"))
    started = sp.where(**{"T1.k": "USER"})
    assert started and all(d.get("T1.rseq", "tls/32/RSEQ_SIG") == "tls/32/RSEQ_SIG" and d["T1.rseq.cpu_id"] == "0"
                           for d in started)
