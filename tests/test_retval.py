"""Syscall results user code can read (model/retval.py) and seccomp's
SECCOMP_RET_ERRNO result (model/entry.py:seccomp_cases).  Expectations
derived by hand from kernel/seccomp.c:__seccomp_filter (the errno becomes
the return value, the body is skipped), arch/x86/kernel/signal.c
(handle_signal: -ERESTARTSYS without SA_RESTART -> -EINTR; setup_rt_frame
saves ax in uc_mcontext and sets ax = 0; restore_sigcontext reloads it)."""

from __future__ import annotations

import pytest
from rseqcheck.model.errors import SpecError

from tests.util import Space, one_thread, system_of


def spec(code: str, *, extra: str = "", env: str = "", seccomp: str = "",
         props: str = '"no-unexpected-kill"') -> str:
    return one_thread(code, env=env, thread=seccomp, extra=extra, props=props)


HANDLER = '''
[handler.SIGUSR1]
code = """
        {body}
        sigreturn
"""
'''


def test_interrupted_read_returns_eintr_and_the_frame_keeps_it(tmp_path):
    code = """        syscall read
        bne     ret, EINTR, done
        store   intr, 1
done:   exit"""
    text = spec(code, env='signals = ["SIGUSR1"]\nmax_signals = 1',
                extra=HANDLER.format(body="syscall getppid"))
    sp = Space(system_of(tmp_path, text))
    # the frame saved -EINTR; the handler's own getppid (0) does not leak back
    assert sp.any(**{"T0.depth": "1", "T0.f1.ret": "EINTR"})
    assert sp.any(**{"T0.depth": "1", "T0.ret": "0", "T0.f1.ret": "EINTR"})
    assert sp.any(intr="1") and sp.any(**{"T0.k": "DEAD", "intr": "0"})
    # after rt_sigreturn the interrupted context reads EINTR, never the handler's 0
    done = sp.where(**{"T0.k": "DEAD"})
    assert {d["intr"] for d in done} == {"0", "1"}


def test_ret_is_not_a_state_variable_unless_read(tmp_path):
    s = system_of(tmp_path, spec("        syscall getpid\n        exit"))
    assert not any(v.name.endswith(".ret") for v in s.vars)
    s = system_of(tmp_path, spec("        syscall getpid\n        beq ret, 0, x\nx:      exit"))
    assert [v.name for v in s.vars if v.name.endswith(".ret")] == ["T0.ret"]


def test_seccomp_errno_on_rseq_breaks_registration_succeeds(tmp_path):
    text = spec("        rseq_register\n        exit", env="glibc_rseq = false",
                seccomp='seccomp = { rseq = "errno:EACCES" }', props='"registration-succeeds"')
    sp = Space(system_of(tmp_path, text))
    assert sp.fired("seccomp: rseq -> SECCOMP_RET_ERRNO (-EACCES), body skipped")
    assert sp.any(bad="registration-succeeds", **{"T0.rseq_ret": "EACCES", "T0.rseq": "none"})


def test_seccomp_errno_on_getpid_reaches_ret(tmp_path):
    code = "        syscall getpid\n        beq ret, EPERM, x\n        store ok, 1\nx:      exit"
    sp = Space(system_of(tmp_path, spec(code, seccomp='seccomp = { getpid = "errno" }')))
    assert sp.any(**{"T0.ret": "EPERM"}) and not sp.any(ok="1")


@pytest.mark.parametrize("code, seccomp, msg", [
    ("        beq ret, 3, x\nx:      exit", "", "ret is compared with 3; it holds 0, EINVAL"),
    ("        exit", 'seccomp = { rseq = "errno:EFOO" }', "errno:NAME (EINVAL, EPERM"),
])
def test_ret_and_errno_spec_errors(tmp_path, code, seccomp, msg):
    with pytest.raises(SpecError) as e:
        system_of(tmp_path, spec(code, seccomp=seccomp))
    assert msg in e.value.message
