"""Restartable sequences, legacy implementation (E0-E3, 4.18-6.18).

Sources (kernel-semantics.md 2.9): kernel/rseq.c: __rseq_handle_notify_resume,
rseq_ip_fixup, rseq_get_rseq_cs, rseq_need_restart, rseq_syscall;
include/linux/rseq.h: rseq_preempt, rseq_migrate, rseq_signal_deliver.

What the model keeps: the TLS `rseq_cs` pointer, the event mask
(PREEMPT/SIGNAL/MIGRATE bits, cleared only when a fixup finds the ip inside a
critical section), TIF_NOTIFY_RESUME, and the abort.  Descriptor validity is
static per instance (version, signature before abort_ip, abort_ip outside
[start, post_commit)).  Registration is glibc's: every thread is registered
from its start, with RSEQ_SIG.
"""

from __future__ import annotations

from dataclasses import replace

from rseqcheck.model import cpus, mmcid
from rseqcheck.model.builder import TV, Builder, Case, CsInst
from rseqcheck.model.ir import And, Const, Eq, Expr, In, Ite, Ne, Not, Or, Var, lift
from rseqcheck.model.registration import _parse, registered, registered_tls, signature_ok

FIXUP = "kernel/rseq.c:rseq_ip_fixup"
NEED_RESTART = "kernel/rseq.c:rseq_need_restart"
GET_CS = "kernel/rseq.c:rseq_get_rseq_cs"

BIT_FLAG = {"PREEMPT": "NO_RESTART_ON_PREEMPT", "SIGNAL": "NO_RESTART_ON_SIGNAL", "MIGRATE": "NO_RESTART_ON_MIGRATE"}


def fixup_cases(b: Builder, t: TV, d: int, ip: Expr, why: str, signal: bool = False) -> list[Case]:
    """Outcomes of __rseq_handle_notify_resume -> rseq_ip_fixup for context d
    whose ip (as the fixup sees it) is `ip`.  `why` names the caller;
    `signal`: rseq_signal_deliver has just set the SIGNAL bit (in the same
    step), so the fixup must see it set."""
    if t.rseq_cs is None:
        return []
    cases: list[Case] = []
    if t.reg is not None:
        cases.append(Case(Eq(t.reg, 0), {}, f"{why}: t->rseq == NULL (not registered), nothing to do", FIXUP))
        # a registration of an unmapped area (accepted before 6.15): the
        # handler's first user access faults (rseq_ip_fixup, rseq_update_cpu_id)
        gone = [i for i, v in enumerate(b.reg_values) if i and v.startswith("unmapped/")]
        if gone:
            cases.append(Case(Or(*[Eq(t.reg, i) for i in gone]), b.kill(),
                              f"{why}: the registered area is not mapped: reading it faults -> SIGSEGV", FIXUP))
    cases.append(Case(Eq(t.rseq_cs, 0), {}, f"{why}: rseq_cs == NULL, nothing to do", FIXUP))
    flags_rule = b.rules["rseq.flags"]
    for c in b.armable(t):
        armed = Eq(t.rseq_cs, c.id)
        cases += unmapped_cases(b, t, c, why, GET_CS)
        if not c.valid:
            what = "version != 0" if c.desc.version else "abort_ip inside the section"
            cases.append(Case(armed, b.kill(), f"{why}: descriptor {c.name} invalid ({what}) -> SIGSEGV", GET_CS))
            continue
        cases.append(Case(And(armed, Not(signature_ok(b, t, c.desc.signature_ok))), b.kill(),
                          f"{why}: signature before {b.ip_label(c.abort)} differs from the registered one -> SIGSEGV", GET_CS))
        inside = In(ip, c.start, c.post)
        cases.append(
            Case(And(armed, Not(inside)), {t.rseq_cs: Const(0)},
                 f"{why}: ip outside {c.name} -> clear rseq_cs (event mask kept)", FIXUP)
        )
        flags = set(c.desc.flags) | set(t.spec_flags)
        if flags_rule == "fatal":
            if flags:
                cases.append(Case(inside, b.kill(), f"{why}: ip inside {c.name}, flags {'|'.join(sorted(flags))} -> -EINVAL -> SIGSEGV", NEED_RESTART, "rseq.flags=fatal"))
                continue
            masked: set[str] = set()
        elif flags_rule == "ignored":
            masked = set()  # the flags are never read: every event aborts
        else:
            if (flags_rule == "honoured" and "NO_RESTART_ON_SIGNAL" in flags
                    and not {"NO_RESTART_ON_PREEMPT", "NO_RESTART_ON_MIGRATE"} <= flags):
                # otherwise a preempted handler could have rseq_cs cleared and
                # the interrupted section resume after rt_sigreturn unprotected
                cases.append(Case(inside, b.kill(), f"{why}: ip inside {c.name}, NO_RESTART_ON_SIGNAL without the others -> -EINVAL -> SIGSEGV", NEED_RESTART, "rseq.flags=honoured"))
                continue
            masked = {bit for bit, fl in BIT_FLAG.items() if fl in flags}
        live: list[Expr] = [Const(1) if (signal and bit == "SIGNAL") else v for bit, v in t.ev.items() if bit not in masked]
        clear_ev = {v: Const(0) for v in t.ev.values()}
        rule = f"rseq.flags={flags_rule}" if masked else ("rseq.flags=ignored" if flags and flags_rule == "ignored" else "")
        abort = {t.rseq_cs: Const(0), t.ip[d]: Const(c.abort), **clear_ev}
        if d in t.dirty:
            abort[t.dirty[d]] = Const(0)
        if live:
            cases.append(Case(And(inside, Or(*live)), abort,
                              f"{why}: ip inside {c.name}, event pending -> abort to {b.ip_label(c.abort)}", FIXUP, rule))
        cases.append(Case(inside, clear_ev,
                          f"{why}: ip inside {c.name}, no event{' (masked by flags)' if masked else ''} -> continue", NEED_RESTART, rule))
    if t.rs:
        # then rseq_update_cpu_node_id rewrites the ids, changed or not
        new = ids(b, t)
        cases = [c if b.killed in c.updates or "not registered" in c.label else
                 replace(c, updates={**new, **c.updates}, label=c.label.replace(", nothing to do", "")
                         + f"; ids := this CPU{' and mm_cid' if t.cid_field is not None else ''}"
                         " (rseq_update_cpu_node_id)") for c in cases]
    return cases


def ids(b: Builder, t: TV, when: Expr | None = None, cpu: Expr | None = None,
        cid: Expr | None = None) -> dict[Var, Expr]:
    """rseq_update_cpu_node_id (legacy) / rseq_set_ids (R1/R2): the
    registered area's cpu_id_start and cpu_id become the CPU the task is
    on (node_id stays 0: one node); only into the TLS area, whose fields
    the program reads.  `when`: only if it holds; `cpu`: the CPU as the
    same step leaves it (a step that migrates the task)."""
    on = registered_tls(b, t)
    if when is not None:
        on = And(on, when)
    cpu = cpus.cpu_of(b, t) if cpu is None else cpu
    out = {v: (cpu if isinstance(on, Const) and on.value else Ite(on, cpu, v)) for v in t.rs.values()}
    if t.cid_field is not None:
        # 6.3+: mm_cid too, the id the task holds (model/mmcid.py)
        cid = lift(t.cid) if cid is None else cid
        out[t.cid_field] = cid if isinstance(on, Const) and on.value else Ite(on, cid, t.cid_field)
    if t.ids_cpu is not None:
        out[t.ids_cpu] = Ite(on, cpu, t.ids_cpu)
    return out


def ro_violation(b: Builder, t: TV) -> Expr:
    """R1 debug / R2 V2 (82f572449cfe): when the ids are about to be
    rewritten, a field that differs from the last value written means user
    space wrote a read-only field: fatal."""
    if t.ids_cpu is None:
        return Const(0)
    mode = Const(1) if b.rules["rseq.debug"] == "on" else Not(legacy_mode(b, t))
    changed = Or(*[Ne(v, t.ids_cpu) for v in t.rs.values()])
    return And(Eq(t.ids_changed, 1), registered_tls(b, t), mode, changed)


def catchable(b: Builder, t: TV, cases: list[Case], delivering: str | None = None) -> list[Case]:
    """An rseq failure ends in force_sigsegv (kernel/rseq.c:
    __rseq_handle_notify_resume, its R1 slow path): force_sig(SIGSEGV), which
    a SIGSEGV handler catches, unless SIGSEGV is blocked or already SIG_DFL
    (force_sig_info_to_task then kills).  While SIGSEGV itself is being
    delivered it is force_fatal_sig: SIG_DFL and pending, but the frame being
    set up is still built, so a handler without SA_NODEFER runs once and the
    task dies at its sigreturn (conformance probe p05-segv); before
    784e0300fe9f (rule rseq.segv_while_delivering_segv = force_sig) it was
    force_sig again: queued, the handler kept, delivered anew forever."""
    if b.segv_dfl is None:
        return cases
    segv = b.killed.type.names.index("SIGSEGV")
    out: list[Case] = []
    for c in cases:
        v = c.updates.get(b.killed)
        if len(c.updates) != 1 or not (isinstance(v, Const) and v.value == segv):
            out.append(c)
            continue
        out.append(replace(c, guard=And(c.guard, Or(t.blk["SIGSEGV"], b.segv_dfl)),
                           label=c.label + " (SIGSEGV blocked or SIG_DFL: killed)"))
        ups: dict[Var, Expr] = {t.pend["SIGSEGV"]: Const(1)}
        how = "force_sig(SIGSEGV), for the handler"
        rule = c.rule
        if delivering == "SIGSEGV":
            if b.rules["rseq.segv_while_delivering_segv"] == "force_sigsegv":
                ups[b.segv_dfl] = Const(1)
                how = "force_fatal_sig(SIGSEGV): SIG_DFL and pending, this frame is still built"
            else:
                # 4.18-rc1: force_sig again, the handler kept: delivered anew (784e0300fe9f)
                how = "force_sig(SIGSEGV) again, handler kept: pending, this frame is still built"
                rule = "rseq.segv_while_delivering_segv=force_sig"
        out.append(replace(c, updates=ups, label=c.label.replace("-> SIGSEGV", "-> " + how), rule=rule))
    return out


def unmapped_cases(b: Builder, t: TV, c: CsInst, why: str, fn: str) -> list[Case]:
    """rseq_cs points at a descriptor whose page a dlclose unmapped: reading
    it faults, wherever the ip is (legacy rseq_get_rseq_cs: copy_from_user;
    R1 rseq_update_user_cs: the get_user of start_ip), and the task gets
    SIGSEGV."""
    gone = b.unmapped.get(c.desc.name)
    if gone is None:
        return []
    return [Case(And(Eq(t.rseq_cs, c.id), gone), b.kill(),
                 f"{why}: descriptor {c.name} was unmapped (dlclose): reading it faults -> SIGSEGV", fn)]


def syscall_check_cases(b: Builder, t: TV, d: int) -> list[Case]:
    """CONFIG_DEBUG_RSEQ rseq_syscall(): SIGSEGV if the descriptor is invalid
    or the post-syscall ip is inside it.  It never clears rseq_cs."""
    if t.rseq_cs is None or b.rules["rseq.debug"] != "on":
        return []
    if optimized(b):
        # R1/R2 rseq_debug_syscall_return: outside -> clear; inside -> fatal
        # (no user_irq on a syscall, generic IRQ entry)
        fn = "kernel/rseq.c:__rseq_debug_syscall_return"
        out = [u.when(registered(t)) for c in b.armable(t) for u in unmapped_cases(b, t, c, "rseq_debug_syscall_return", fn)]
        out += [Case(And(registered(t), Eq(t.rseq_cs, c.id), In(t.ip[d], c.start, c.post)), b.kill(),
                    f"rseq_debug_syscall_return: post-syscall ip inside {c.name} -> SIGSEGV", fn, "rseq.debug=on")
               for c in b.armable(t)]
        out += [Case(And(registered(t), Eq(t.rseq_cs, c.id)), {t.rseq_cs: Const(0)},
                     f"rseq_debug_syscall_return: ip outside {c.name} -> clear rseq_cs", fn, "rseq.debug=on")
                for c in b.armable(t)]
        return out
    out = []
    on = registered(t)
    for c in b.armable(t):
        armed = And(on, Eq(t.rseq_cs, c.id))
        out += [u.when(on) for u in unmapped_cases(b, t, c, "rseq_syscall", "kernel/rseq.c:rseq_syscall")]
        if not c.valid:
            out.append(Case(armed, b.kill(), f"rseq_syscall: descriptor {c.name} invalid -> SIGSEGV", "kernel/rseq.c:rseq_syscall", "rseq.debug=on"))
        else:
            out.append(Case(And(armed, Not(signature_ok(b, t, c.desc.signature_ok))), b.kill(),
                            f"rseq_syscall: descriptor {c.name} signature differs -> SIGSEGV", "kernel/rseq.c:rseq_syscall", "rseq.debug=on"))
            out.append(Case(And(armed, In(t.ip[d], c.start, c.post)), b.kill(),
                            f"rseq_syscall: post-syscall ip inside {c.name} -> SIGSEGV", "kernel/rseq.c:rseq_syscall", "rseq.debug=on"))
    return out


def inside_armed(b: Builder, t: TV, d: int) -> Expr:
    """Context d's ip is inside the critical section rseq_cs points at: what
    the kernel's fixup (rseq_ip_fixup -> rseq_need_restart) will act on."""
    if t.rseq_cs is None:
        return Const(0)
    return Or(*[And(Eq(t.rseq_cs, c.id), In(t.ip[d], c.start, c.post)) for c in b.armable(t)])


def in_section(b: Builder, t: TV, e: int, optout: str | None = None) -> Expr:
    """Frame e (0 the thread, e >= 1 a handler frame) is executing a
    critical section: its ip is in [start, post_commit) of a descriptor of
    its code block, whatever rseq_cs holds now -- a handler may have had it
    cleared (rseq_ip_fixup clears it when it finds the handler's ip outside)
    and rt_sigreturn resumes the frame inside with nothing armed.  Sections
    that opt out of `optout` by a NO_RESTART flag are excluded.  This is
    what the rseq-cs-atomic monitor charges an event to."""
    if t.rseq_cs is None:
        return Const(0)
    thread_seg = next(ts.segment for ts in b.spec.threads if ts.name == t.name)
    terms = []
    for c in b.cs:
        if (c.seg is thread_seg) != (e == 0):
            continue
        if optout and BIT_FLAG[optout] in set(c.desc.flags) | set(t.spec_flags):
            continue
        terms.append(In(t.ip[e], c.start, c.post))
    return Or(*terms)


def charge(b: Builder, t: TV, d: int, bit: str) -> dict[Var, Expr]:
    """The rseq-cs-atomic monitor: an event while the thread is at depth d
    interrupts every frame 0..d on the stack that is inside a section (a
    preempted handler preempts the code it interrupted too)."""
    if bit not in BIT_FLAG:
        return {}
    return {t.dirty[e]: Or(t.dirty[e], in_section(b, t, e, optout=bit)) for e in range(d + 1) if e in t.dirty}


def event(b: Builder, t: TV, d: int, bit: str) -> dict[Var, Expr]:
    """rseq_preempt / rseq_migrate / the SIGNAL bit: set the event bit and
    TIF_NOTIFY_RESUME (not for SIGNAL, whose caller runs the fixup itself),
    and mark the interrupted section for the rseq-cs-atomic monitor."""
    if optimized(b):
        return raise_work(b, t, d, bit)
    out: dict[Var, Expr] = {}
    if bit in t.ev:
        out[t.ev[bit]] = Const(1)
    if bit != "SIGNAL" and t.notify is not None and t.rseq_cs is not None:
        out[t.notify] = Const(1)
    out.update(charge(b, t, d, bit))
    return out


def schedule(b: Builder, t: TV, d: int) -> list[tuple[str, dict[Var, Expr]]]:
    """A context switch away and back (kernel/sched/core.c:
    prepare_task_switch -> rseq_preempt), optionally onto another CPU
    (set_task_cpu -> rseq_migrate)."""
    base = event(b, t, d, "PREEMPT")
    if b.uses_cid and b.curr:
        # the CPU is idle until __schedule switches a thread in (T again,
        # or another), which is where switch_mm_cid gives the id: between
        # the two, another CPU may switch in a thread that takes T's id
        out = [(" (its CPU idle until the next switch-in)", {**base, **cpus.release(b, t)})]
    else:
        out = [("", base)]
    for u in b.threads if b.curr else ():
        sw = cpus.switch_to(b, t, u) if u is not t else None
        if sw is not None:
            # switch_mm_cid: T's id is released, U gets one
            for v in mmcid.choices(b):
                cid = mmcid.switch_in(b, u, v, when=cpus.switch_cond(b, t, u), skip=(t,))
                out.append((f" (switches to {u.name}{f', mm_cid {v} if free' if b.uses_cid else ''})",
                            {**base, **sw, **cid}))
    if b.migrates:
        mig = dict(base)
        for v, e in event(b, t, d, "MIGRATE").items():
            mig[v] = Or(e, mig[v]) if v in mig and (v in t.dirty.values() or v is t.raised or v is t.ids_changed) else e
        if t.cpu is None:
            out.append((" and migrates (rseq_migrate)", mig))
        for k in range(1, b.env.cpus) if t.cpu is not None else ():
            moved = {**mig, **cpus.move(b, t, k)}
            if t.aff is not None:
                # the affinity mask: a target outside it is no migration
                # (the outcome is then the plain switch above)
                moved = cpus.only_if_allowed(b, t, k, moved, out[0][1])
            why = " and migrates (set_task_cpu -> rseq_migrate)" if t.aff is None else \
                " and migrates if its mask allows (set_task_cpu -> rseq_migrate)"
            out.append((why, moved))
    return out


# ----------------------------------------------------------- R1 / R2 (6.19+)
#
# kernel-semantics.md 2.10.  No event mask: a context switch raises the rseq
# work (event.sched_switch + TIF_RSEQ) only if the task entered the kernel
# by an interrupt/exception from user mode (user_irq) or its ids changed;
# R2 legacy mode (rseq_len == 32) raises on every switch.  The work runs
# after the exit loop (rseq_exit_to_user_mode_restart) and evaluates the
# critical section only with user_irq (generic IRQ entry, x86; the gate is
# in rseq_update_usr and applies to R2 legacy mode too).  Signal delivery
# evaluates with user_irq (R1, V2) or always (R2 legacy).

UPDATE_CS = "include/linux/rseq_entry.h:rseq_update_user_cs"


def optimized(b: Builder) -> bool:
    return b.rules["rseq.impl"] != "legacy"


def legacy_mode(b: Builder, t: TV) -> Expr:
    """R2 legacy mode: registered with rseq_len == 32 (glibc 2.35-2.40)."""
    if b.rules["rseq.impl"] != "r2":
        return Const(0)
    if t.reg is None:
        return Const(1)  # glibc's 32-byte registration
    return Or(*[Eq(t.reg, i) for i, v in enumerate(b.reg_values) if i and _parse(v)[1] == 32])


def eval_cases(b: Builder, t: TV, d: int, ip: Expr, why: str) -> list[Case]:
    """rseq_update_user_cs (non-debug) or rseq_debug_update_user_cs."""
    if t.rseq_cs is None:
        return []
    debug = b.rules["rseq.debug"] == "on"
    cases: list[Case] = []
    if t.reg is not None:
        cases.append(Case(Eq(t.reg, 0), {}, f"{why}: no rseq registration, nothing to do", UPDATE_CS))
    cases.append(Case(Eq(t.rseq_cs, 0), {}, f"{why}: rseq_cs == NULL, nothing to do", UPDATE_CS))
    for c in b.armable(t):
        armed = Eq(t.rseq_cs, c.id)
        inside = In(ip, c.start, c.post)
        cases += unmapped_cases(b, t, c, why, UPDATE_CS)
        cases.append(Case(And(armed, Not(inside)), {t.rseq_cs: Const(0)}, f"{why}: ip outside {c.name} -> clear rseq_cs", UPDATE_CS))
        # the debug checks read the descriptor's head (version, flags), never
        # the area's flags word (6.19+ reads it nowhere)
        if debug and (not c.valid or c.desc.flags):
            cases.append(Case(armed, b.kill(), f"{why}: ip inside {c.name}, debug checks fail (version/flags/abort_ip) -> SIGSEGV",
                              "include/linux/rseq_entry.h:rseq_debug_update_user_cs", "rseq.debug=on"))
            continue
        cases.append(Case(And(armed, Not(signature_ok(b, t, c.desc.signature_ok))), b.kill(),
                          f"{why}: ip inside {c.name}, signature differs -> SIGSEGV", UPDATE_CS))
        abort: dict[Var, Expr] = {t.rseq_cs: Const(0), t.ip[d]: Const(c.abort)}
        if d in t.dirty:
            abort[t.dirty[d]] = Const(0)
        cases.append(Case(armed, abort, f"{why}: ip inside {c.name} -> abort to {b.ip_label(c.abort)}", UPDATE_CS))
    return cases


def raise_work(b: Builder, t: TV, d: int, bit: str) -> dict[Var, Expr]:
    """R1/R2 counterpart of `event`: a switch raises the work if user_irq
    (or, migrating, because the ids change); R2 legacy mode always."""
    out: dict[Var, Expr] = {}
    if t.raised is not None and bit in ("PREEMPT", "MIGRATE"):
        if bit == "MIGRATE":
            out[t.raised] = Const(1)
        else:
            out[t.raised] = Or(t.raised, t.user_irq, legacy_mode(b, t))
    if t.ids_changed is not None:
        # __set_task_cpu sets ids_changed; R2 legacy mode sets it on every switch too
        if bit == "MIGRATE":
            out[t.ids_changed] = Const(1)
        elif bit == "PREEMPT":
            out[t.ids_changed] = Or(t.ids_changed, legacy_mode(b, t))
    out.update(charge(b, t, d, bit))
    return out


def exit_fastpath(b: Builder, t: TV, d: int) -> list[Case]:
    """rseq_exit_to_user_mode_restart -> rseq_update_usr: the section is
    evaluated only with user_irq (generic IRQ entry)."""
    fn = "include/linux/rseq_entry.h:rseq_exit_to_user_mode_restart"
    evals = eval_cases(b, t, d, t.ip[d], "rseq exit fast path")
    gated = [c.when(t.user_irq) for c in evals]
    out = gated + [Case(Const(1), {}, "rseq exit fast path: no user_irq -> ids only, critical section not evaluated", fn)]
    if t.ids_changed is not None:
        # rseq_update_usr writes the ids only when they changed (R2 legacy
        # mode: every switch marks them changed)
        new = {**ids(b, t, when=Eq(t.ids_changed, 1)), t.ids_changed: Const(0)}
        out = [c if b.killed in c.updates else replace(c, updates={**new, **c.updates},
                                                       label=c.label + "; ids := this CPU if they changed") for c in out]
        if t.ids_cpu is not None:
            out.insert(0, Case(ro_violation(b, t), b.kill(), "rseq exit fast path: a read-only id field was written "
                               "by user space (debug / V2 check) -> SIGSEGV", fn))
    return out
