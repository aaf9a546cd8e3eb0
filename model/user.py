"""User-mode instructions of the v0 assembly, one action per (context,
instruction).  The kernel sees none of these until the thread enters it;
`syscall`, `sigreturn` and `exit` are the entries (x86-64 SYSCALL: the saved
ip is the address after the instruction, kernel-semantics.md 2.2)."""

from __future__ import annotations

from dataclasses import replace

from rseqcheck.model import cpus, data, forcesig, progress, singlestep
from rseqcheck.model.builder import PHASES, TV, Builder, Case
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import Add, And, Const, Eq, Expr, Gt, In, Ite, Lt, Ne, Not, Op, Or, Sub, Var, lift
from rseqcheck.model.program import BRANCHES, RET_VALUES, RSEQ_ERRORS, SYSCALL_OPS, Instr, is_reg
from rseqcheck.model.registration import registered_tls
from rseqcheck.model.sud import selector_value


def contexts(b: Builder, t: TV):
    """(depth, code index, instruction) for every instruction context d can run."""
    seg = next(ts.segment for ts in b.spec.threads if ts.name == t.name)
    for i, ins in enumerate(seg.instrs):
        yield 0, seg.base + i, ins
    for d in range(1, b.N + 1):
        for sig, hseg in b.handler_seg.items():
            if sig in b.sigs:
                for i, ins in enumerate(hseg.instrs):
                    yield d, hseg.base + i, ins


def add_actions(b: Builder, t: TV) -> None:
    valid: dict[int, list[int]] = {}
    dead = _dead_registers(b, t)
    for d, pc, ins in contexts(b, t):
        _instr(b, t, d, pc, ins, dead.get((d > 0, pc), set()))
        valid.setdefault(d, []).append(pc)
    # A dispatched `exit` or a restarted final syscall returns to the address
    # after the last instruction of a code block: what follows in memory is
    # not this context's code.  Made a visible fault instead of a silent stop.
    for d in range(b.N + 1):
        pcs = sorted(valid.get(d, []))
        inside = Or(*[In(t.ip[d], lo, hi + 1) for lo, hi in _runs(pcs)])
        b.add(t, b.ctx_name(t, d), And(t.at("USER"), t.at_depth(d), Not(inside)), b.kill("SIGSEGV"),
              "runs off the end of its code block -> fault (SIGSEGV)", tags={"user"})


def _dead_registers(b: Builder, t: TV) -> dict[tuple[bool, int], set[str]]:
    """(in a handler, code index) -> registers a step there resets to 0
    (model/data.py:dead_after).  In a handler only the registers its frame
    saves: rt_sigreturn restores them; the others are the interrupted
    code's."""
    if not t.regs:
        return {}
    handler_regs = {r for s in b.handler_seg.values() for ins in s.instrs for r in data.operands(ins) if is_reg(r)}
    handler_regs |= {r for s in b.handler_seg.values() for ins in s.instrs if ins.op == "assert"
                     for r in data._uses_defs(ins)[0]}
    saved = set(t.fregs[1]) if 1 in t.fregs else set()
    seg = next(ts.segment for ts in b.spec.threads if ts.name == t.name)
    out: dict[tuple[bool, int], set[str]] = {}
    for i, dead in enumerate(data.dead_after(b, seg, handler_regs)):
        out[(False, seg.base + i)] = dead
    for hseg in b.handler_seg.values():
        for i, dead in enumerate(data.dead_after(b, hseg, set())):
            out[(True, hseg.base + i)] = dead & saved
    return out


def _runs(pcs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in pcs:
        if out and out[-1][1] == p - 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def _instr(b: Builder, t: TV, d: int, pc: int, ins: Instr, dead: set[str]) -> None:
    seg, _ = b.code[pc]
    actor = b.ctx_name(t, d)
    base = And(t.at("USER"), t.at_depth(d), Eq(t.ip[d], pc))
    if t.glibc_init is not None and d == 0:
        base = And(base, Not(t.glibc_init))  # glibc's start_thread first (model/glibc.py)
    nxt = pc + 1
    ups: dict[Var, Expr] = {}
    forced: list[Case] = []
    label = ins.text
    tags = {"user"}
    data_cases: list[Case] = []
    if data.is_data(ins):
        target = seg.base + seg.labels[ins.args[2]] if ins.op in BRANCHES else None
        data_cases, oob = data.instr_cases(b, t, ins, t.ip[d], nxt, target)
        if oob is not None:
            # the access faults (exc_page_fault -> force_sig_fault SIGSEGV): like
            # `fault SIGSEGV`, a handler catches it unless SIGSEGV is blocked;
            # without a handler the delivery kills, so the step kills at once
            why = f"{label}  -- index outside the per-CPU array: the access faults (SIGSEGV)"
            if "SIGSEGV" in t.pend:
                trap = {t.k: Const(PHASES.index("LOOP")), t.pend["SIGSEGV"]: Const(1), t.ip[d]: Const(pc)}
                if t.user_irq is not None:
                    trap[t.user_irq] = Const(1)
                forced = forcesig.cases(b, t, "SIGSEGV", oob, trap, why,
                                        "arch/x86/mm/fault.c:do_user_addr_fault -> force_sig_fault")
            else:
                forced = [Case(oob, b.kill("SIGSEGV"), why)]
        ups = {t.ip[d]: Const(nxt)}
    elif ins.op == "nop":
        ups = {t.ip[d]: Const(nxt)}
    elif ins.op == "jmp":
        nxt = seg.base + seg.labels[ins.args[0]]
        ups = {t.ip[d]: Const(nxt)}
    elif ins.op == "store":
        ups = {b.uvar(t, ins.args[0]): Const(ins.args[1]), t.ip[d]: Const(nxt)}
    elif ins.op == "add":
        v = b.uvar(t, ins.args[0])
        lo, hi, n = v.type.lo, v.type.hi, ins.args[1]
        size = hi - lo + 1
        # C arithmetic on a narrow type: wrap around (the 2018 refcount had no check)
        ups = {v: Ite(Gt(Add(v, n), hi), Sub(Add(v, n), size), Ite(Lt(Add(v, n), lo), Add(Add(v, n), size), Add(v, n))),
               t.ip[d]: Const(nxt)}
    elif ins.op in ("beq", "bne"):
        target = seg.base + seg.labels[ins.args[2]]
        test = _branch_test(b, t, ins)
        if ins.op == "bne":
            test = Not(test)
        ups = {t.ip[d]: Ite(test, target, nxt)}
    elif ins.op == "set_desc":
        val = 0 if ins.args[0] == "0" else t.desc.type.names.index(ins.args[0])
        ups = {t.desc: Const(val), t.owner: Const(d if val else 0), t.ip[d]: Const(nxt)}
        if t.orphan is not None:
            ups[t.orphan] = Const(0)
    elif ins.op == "rseq_cs":
        val = 0 if ins.args[0] == "0" else b.instance_for(ins.args[0], seg, ins.line).id
        ups = {t.rseq_cs: Const(val), t.ip[d]: Const(nxt)}
        if d in t.dirty:
            ups[t.dirty[d]] = Const(0)
    elif ins.op == "assert":
        ups = {t.ip[d]: Const(nxt)}
    elif ins.op == "fault":
        # an exception from user mode (irqentry_enter_from_user_mode; R1:
        # user_irq) whose handler force_sig()s the signal; the exit loop
        # delivers it, after rseq_signal_deliver (an armed section aborts)
        sig = ins.args[0]
        ups = {t.k: Const(PHASES.index("LOOP")), t.pend[sig]: Const(1),
               t.ip[d]: Const(nxt if sig == "SIGTRAP" else pc)}
        if t.user_irq is not None:
            ups[t.user_irq] = Const(1)
        # force_sig_info_to_task: a blocked or ignored one is SIG_DFL: it kills
        forced = [c for c in forcesig.cases(b, t, sig, Const(1), {}, label, forcesig.FORCE) if b.killed in c.updates]
    elif ins.op == "abort":
        if b.sig_action("SIGABRT") == "handler":
            raise SpecError(b.spec.path, ins.line, "abort with a [handler.SIGABRT] is not modelled (the handler "
                            "runs before abort() raises SIGABRT again)")
        # glibc stdlib/abort.c: raise(SIGABRT); a handler that returns is
        # reset to SIG_DFL and SIGABRT raised again: the process ends either way
        forced = [Case(Const(1), b.kill("SIGABRT"), f"{label}: abort() -> SIGABRT, the process ends",
                       "glibc stdlib/abort.c:abort")]
    elif ins.op == "dlclose":
        ups = {b.unmapped[ins.args[0]]: Const(1), t.ip[d]: Const(nxt)}
    elif ins.op in SYSCALL_OPS:
        ups = {t.ip[d]: Const(nxt), t.k: Const(PHASES.index("ENTRY"))}
        tags.add("syscall")
    elif ins.op == "sud_select":
        ups = {t.selector: Const(selector_value(t, ins.args[0])), t.ip[d]: Const(nxt)}
    elif ins.op in ("set_tf", "clear_tf"):
        # pushf; or/and $TF; popf: the new TF applies from the next instruction
        ups = {t.tf: Const(int(ins.op == "set_tf")), t.ip[d]: Const(nxt)}
    for r in sorted(dead):
        ups.setdefault(t.regs[r], Const(0))  # dead after this step
    step_bad, step_cases, step_common = singlestep.instr_cases(b, t, label, ins.op in SYSCALL_OPS)
    bad, extra = _violations(b, t, d, pc, ins, nxt)
    after = [(dc.guard, lift(dc.updates.get(t.ip[d], ups.get(t.ip[d], t.ip[d])))) for dc in data_cases]
    after = after or [(Const(1), lift(ups.get(t.ip[d], t.ip[d])))]
    commit, commit_tags = _commits(b, t, d, pc, ins, after)
    bad, extra = bad + commit, extra | commit_tags
    if data_cases:
        # a data instruction's outcomes are cases: a single-step trap comes
        # on top of each (the instruction completes, then #DB)
        step_cases = [replace(sc, guard=And(sc.guard, dc.guard), updates={**dc.updates, **sc.updates})
                      for sc in step_cases for dc in data_cases]
    # a stepped instruction still runs: its trigger tags come along (else a
    # property fed by it looks vacuous under ptrace = "singlestep")
    step_cases = [replace(sc, tags=sc.tags | tags | extra) for sc in step_cases]
    cases = step_bad + bad + forced + step_cases
    if data_cases:
        cases += [replace(c, tags=frozenset(tags | extra)) for c in data_cases]
    else:
        cases.append(Case(Const(1), {}, label, tags=frozenset(tags | extra)))
    cases = progress.tag_cases(b, t, d, pc, ins.op, ins.args[0] if ins.args else None, cases, {**ups, **step_common})
    b.add_cases(t, actor, base, cases, {**ups, **step_common})


def _branch_test(b: Builder, t: TV, ins: Instr) -> Expr:
    name, val = ins.args[0], ins.args[1]
    if name == "rseq_size":  # glibc's __rseq_size: 32 when it registered (2.35-2.39), else 0
        return Const(int(val == (32 if b.env.glibc_rseq else 0)))
    if name == "ret":
        if str(val) not in RET_VALUES:
            raise SpecError(b.spec.path, ins.line, f"ret is compared with {val}; it holds {', '.join(RET_VALUES[:-1])} or {RET_VALUES[-1]}")
        return Eq(t.ret, RET_VALUES.index(str(val)))
    if name == "rseq_ret":
        if str(val) not in RSEQ_ERRORS:
            raise SpecError(b.spec.path, ins.line, f"rseq_ret is compared with {val}; it holds {', '.join(RSEQ_ERRORS[:-1])} or {RSEQ_ERRORS[-1]}")
        if t.rseq_ret is None:
            return Const(int(val in (0, "0")))
        return Eq(t.rseq_ret, t.rseq_ret.type.names.index(str(val)))
    if isinstance(val, str):
        raise SpecError(b.spec.path, ins.line, f"{name} is compared with {val}; only rseq_ret and ret hold error names")
    return Eq(b.uvar(t, name), val)


def _violations(b: Builder, t: TV, d: int, pc: int, ins: Instr, nxt: int) -> tuple[list[Case], set[str]]:
    """The cases of this instruction that break a checked property (in
    priority order), and the trigger tags its ordinary execution carries."""
    out: list[Case] = []
    tags: set[str] = set()
    if ins.op == "add" and "rseq-refcount-no-overflow" in b.checked:
        v = b.uvar(t, ins.args[0])
        wraps = Or(Gt(Add(v, ins.args[1]), v.type.hi), Lt(Add(v, ins.args[1]), v.type.lo))
        out.append(Case(wraps, b.flag_bad("rseq-refcount-no-overflow"), f"{ins.text}  -- wraps around",
                        tags=frozenset({"add"})))
        tags.add("add")
    if ins.op == "rseq_cs" and ins.args[0] != "0" and t.reg is not None and "rseq-registered-while-used" in b.checked:
        out.append(Case(Eq(t.reg, 0), b.flag_bad("rseq-registered-while-used"),
                        f"{ins.text}  -- but the thread has no rseq registration", tags=frozenset({"rseq-use"})))
        tags.add("rseq-use")
    if ins.op == "assert":
        oob: list = []  # a register index out of its array: the assert fails there
        holds = data.to_ir(ins.expr, b, t, ins.line, oob)
        out.append(Case(Or(Not(holds), *oob), b.flag_bad("assert"), f"{ins.text}  -- FAILS", tags=frozenset({"assert"})))
        tags.add("assert")
    if "rseq-cpu-id-accurate" in b.checked:
        on = registered_tls(b, t)
        out.append(Case(And(on, Ne(t.rs["cpu_id"], cpus.cpu_of(b, t))), b.flag_bad("rseq-cpu-id-accurate"),
                        f"{ins.text}  -- rseq.cpu_id is not the CPU it runs on", tags=frozenset({"cpu-id-read"})))
        if not (isinstance(on, Const) and not on.value):
            tags.add("cpu-id-read")
    if ins.op in SYSCALL_OPS and t.rseq_cs is not None and "no-syscall-in-rseq-cs" in b.checked:
        for c in b.cs:
            if c.start <= nxt < c.post:
                out.append(Case(Eq(t.rseq_cs, c.id), b.flag_bad("no-syscall-in-rseq-cs"),
                                f"{ins.text}  -- post-syscall ip inside armed {c.name}",
                                tags=frozenset({"syscall-armed"})))
            if c.start <= pc < c.post:
                tags.add("syscall-armed")
    return out, tags


def _commits(b: Builder, t: TV, d: int, pc: int, ins: Instr, landings: list[tuple[Expr, Expr]]) -> tuple[list[Case], set[str]]:
    """rseq-cs-atomic: the instruction at pc, inside a section, moves the ip
    to the section's post-commit ip (`landings`: each outcome's guard and
    new ip), so the section commits.  Whatever rseq_cs holds: a section the
    kernel no longer sees (a handler had it cleared) commits all the same.
    A violation if an event reached the frame since its rseq_cs store and
    nothing aborted it (`dirty`, model/rseq.py:charge)."""
    if "rseq-cs-atomic" not in b.checked or d not in t.dirty:
        return [], set()
    out: list[Case] = []
    tags: set[str] = set()
    for c in b.cs:
        if not c.start <= pc < c.post:
            continue
        lands = Or(*[And(g, _is(ip, c.post)) for g, ip in landings])
        if isinstance(lands, Const) and not lands.value:
            continue
        out.append(Case(And(lands, t.dirty[d]), b.flag_bad("rseq-cs-atomic"),
                        f"{ins.text}  -- commits {c.name} after an unaborted interruption",
                        tags=frozenset({"commit"})))
        tags.add("commit")
    return out, tags


def _is(ip: Expr, target: int) -> Expr:
    """ip == target, folded where the new ip is a constant or a branch
    between constants (the common case: no guard term at all)."""
    if isinstance(ip, Const):
        return Const(int(ip.value == target))
    if isinstance(ip, Op) and ip.op == "ite" and all(isinstance(a, Const) for a in ip.args[1:]):
        return Or(And(ip.args[0], _is(ip.args[1], target)), And(Not(ip.args[0]), _is(ip.args[2], target)))
    return Eq(ip, target)
