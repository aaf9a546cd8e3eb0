"""The rseq system call and registration lifetime (kernel-semantics.md
2.11, 2.19; seed 004).

Sources: kernel/rseq.c:sys_rseq (SYSCALL_DEFINE4(rseq, ...)), checks in the
kernel's order:
  unregister: not registered or another area -> -EINVAL; other length ->
    -EINVAL; other signature -> -EPERM; else t->rseq = NULL (rseq_cs and
    the event mask are left as they are).
  register: already registered: other area or length -> -EINVAL, same but
    other signature -> -EPERM, identical -> -EBUSY; length not accepted
    (rule rseq.len_check) -> -EINVAL; else register, clear a stale rseq_cs
    (rule rseq.register_clears_cs) and set NOTIFY_RESUME.
glibc (2.35+) registers every thread before user code runs ("tls/32/
RSEQ_SIG") unless [environment] glibc_rseq = false, and never unregisters.
fork, clone and execve (the child keeps, a CLONE_VM child loses, exec drops
the registration) are in model/lifecycle.py.  Not modelled: an rseq_cs
pointing at freed memory (a fault: the task is killed like an invalid one).
"""

from __future__ import annotations

from rseqcheck.model import data, retval
from rseqcheck.model.builder import TV, Builder, Case
from rseqcheck.model.ir import Const, Eq, Expr, Ne, Or, Var
from rseqcheck.model.program import RSEQ_ERRORS, Instr

SYS_RSEQ = "kernel/rseq.c:sys_rseq"


def _parse(v: str) -> tuple[str, int, str]:
    area, ln, sig = v.split("/")
    return area, int(ln), sig


def body_cases(b: Builder, t: TV, ins: Instr) -> list[Case]:
    """Outcomes of the body of rseq(); each sets rseq_ret."""
    assert t.reg is not None and t.rseq_ret is not None
    me = "/".join(str(a) for a in ins.args)
    area, ln, sig = ins.args
    ret = {e: {t.rseq_ret: Const(RSEQ_ERRORS.index(e))} for e in RSEQ_ERRORS}
    fail = "registration-succeeds" in b.checked
    tags = frozenset({"rseq-call"})
    out: list[Case] = []

    def err(guard: Expr, code: str, why: str) -> None:
        ups = {**ret[code], **retval.error(t, code)}  # ax: the errno when a program reads `ret`
        if fail:
            ups.update(b.flag_bad("registration-succeeds"))
        out.append(Case(guard, ups, f"rseq({me}{', UNREGISTER' if ins.op == 'rseq_unregister' else ''}): {why} -> -{code}",
                        SYS_RSEQ, "", tags))

    def regs(pred) -> Expr:
        return Or(*[Eq(t.reg, i) for i, v in enumerate(b.reg_values) if i and pred(*_parse(v))])

    if ins.op == "rseq_unregister":
        err(Eq(t.reg, 0), "EINVAL", "no registration")
        err(regs(lambda a, n, s: a != area), "EINVAL", "another area is registered")
        err(regs(lambda a, n, s: a == area and n != ln), "EINVAL", "length differs")
        err(regs(lambda a, n, s: a == area and n == ln and s != sig), "EPERM", "signature differs")
        if area == "unmapped":
            # rseq_reset_rseq_cpu_id writes the area before forgetting it
            err(Const(1), "EFAULT", "resetting the ids in the area faults")
            return out
        ups: dict[Var, Expr] = {**ret["0"], t.reg: Const(0)}
        rule = ""
        if t.rs and area == "tls":
            # the ids are reset before the task forgets the area
            start = 0 if b.rules["rseq.unregister_cpu_id_start"] == "0" else data.UNINITIALIZED
            ups[t.rs["cpu_id_start"]] = Const(start)
            ups[t.rs["cpu_id"]] = Const(data.UNINITIALIZED)
            if t.cid_field is not None:
                ups[t.cid_field] = Const(0)  # 6.3+: node_id = mm_cid = 0
            rule = "rseq.unregister_cpu_id_start=" + b.rules["rseq.unregister_cpu_id_start"]
        what = "ids reset, unregistered" if rule else "unregistered"
        out.append(Case(Const(1), ups, f"rseq({me}, UNREGISTER): {what}", SYS_RSEQ, rule, tags))
        return out
    err(regs(lambda a, n, s: a != area or n != ln), "EINVAL", "already registered with another area or length")
    err(regs(lambda a, n, s: a == area and n == ln and s != sig), "EPERM", "already registered with another signature")
    err(Ne(t.reg, 0), "EBUSY", "already registered")
    # 6.3+: 32, or any length up to the feature size offsetof(struct rseq, end),
    # which is at most 32 through 7.1, with the area aligned (the model's areas
    # are): 33..63 are accepted too (conformance: 33, 40, 48, 63 on 6.18)
    ok_len = ln == 32 if b.rules["rseq.len_check"] == "32-only" else ln >= 32
    if not ok_len:
        err(Const(1), "EINVAL", f"length {ln} not accepted ({b.rules['rseq.len_check']})")
        return out
    if area == "kernel":
        err(Const(1), "EFAULT", "access_ok fails (not a user address)")
        return out
    if area == "unmapped" and (b.rules["rseq.register_clears_cs"] == "yes" or b.rules["rseq.impl"] != "legacy"):
        # 6.15+ reads rseq_cs to clear it; R1/R2 write the initial contents
        err(Const(1), "EFAULT", "the area's page is not mapped: reading rseq_cs faults")
        return out
    ups: dict[Var, Expr] = {**ret["0"], t.reg: Const(b.reg_values.index(me))}
    if t.raised is not None:
        ups[t.raised] = Const(1)  # R1/R2: rseq_force_update
        if t.ids_changed is not None:
            ups[t.ids_changed] = Const(1)
        if t.rs and area == "tls":
            # R1/R2 write the area's initial contents: both cpu fields -1
            for v in t.rs.values():
                ups[v] = Const(data.UNINITIALIZED)
            if t.cid_field is not None:
                ups[t.cid_field] = Const(0)  # node_id = mm_cid = 0 until the first update
            if t.ids_cpu is not None:
                ups[t.ids_cpu] = Const(data.UNINITIALIZED)
    elif t.notify is not None:
        ups[t.notify] = Const(1)  # rseq_set_notify_resume: IDs written on the way out
    if t.rseq_cs is not None and b.rules["rseq.register_clears_cs"] == "yes":
        ups[t.rseq_cs] = Const(0)
    out.append(Case(Const(1), ups, f"rseq({me}): registered", SYS_RSEQ, "rseq.register_clears_cs=" + b.rules["rseq.register_clears_cs"], tags))
    return out


def registered_tls(b: Builder, t: TV) -> Expr:
    """t's registered area is its TLS one (the area whose fields the
    program reads as rseq.FIELD)."""
    if t.reg is None:
        return Const(1)
    return Or(*[Eq(t.reg, i) for i, v in enumerate(b.reg_values) if i and _parse(v)[0] == "tls"])


def registered(t: TV) -> Expr:
    return Ne(t.reg, 0) if t.reg is not None else Const(1)


def signature_ok(b: Builder, t: TV, desc_sig_ok: bool) -> Expr:
    """The word before abort_ip equals the registered signature
    (rseq_get_rseq_cs compares it with t->rseq_sig)."""
    want = "RSEQ_SIG" if desc_sig_ok else "other"
    if t.reg is None:
        return Const(int(desc_sig_ok))
    return Or(*[Eq(t.reg, i) for i, v in enumerate(b.reg_values) if i and _parse(v)[2] == want])
