"""The data machine of user code: registers, loads and stores, per-CPU
arrays and the fields of the thread's rseq area (issue: what rseq is for).

Operands (model/program.py parses them):
  %r0..%r15      registers, one set per thread; a signal frame saves the
                 ones a handler can change and rt_sigreturn restores them
                 (arch/x86/kernel/signal_64.c: setup_rt_frame saves the
                 user registers in uc_mcontext, restore_sigcontext reloads
                 them)
  VAR, tls.VAR   user variables (v0)
  ARR[%rN], ARR[N]
                 slot N of a per-CPU array ([variables] "ARR[cpu]" = [MIN,
                 MAX]); an index outside 0..cpus-1 faults (SIGSEGV)
  rseq.cpu_id_start, rseq.cpu_id, rseq.node_id
                 fields of the thread's registered struct rseq (written by
                 the kernel by rule: model/rseq.py:ids, model/registration.py);
                 node_id is 0 (one NUMA node)
Values are bounded: a register holds the hull of every range and constant
the spec uses (CPU numbers and RSEQ_CPU_ID_UNINITIALIZED = -1,
RSEQ_CPU_ID_REGISTRATION_FAILED = -2 included); arithmetic and stores wrap
around the destination's range, as C arithmetic on a narrow type does.
"""

from __future__ import annotations

from rseqcheck.model.builder import Case
from rseqcheck.model.errors import SpecError
from rseqcheck.model.ir import Add, And, Const, Eq, Expr, Ge, Gt, Ite, Le, Lt, Ne, Not, Or, Ref, Sub, Var, lift
from rseqcheck.model.program import BRANCHES, MEM, RSEQ_FIELDS, AExpr, Instr, expr_vars, is_reg

# the v0 forms keep their v0 semantics (model/user.py)
V0_OPS = ("store", "add", "beq", "bne")
DATA_OPS = ("mov", "load", "sub", "blt", "bge")
UNINITIALIZED = -1  # RSEQ_CPU_ID_UNINITIALIZED
REGISTRATION_FAILED = -2  # RSEQ_CPU_ID_REGISTRATION_FAILED (glibc, when it did not register)
# fields the model keeps as state; node_id reads as 0
FIELDS = ("cpu_id_start", "cpu_id")


def is_data(ins: Instr) -> bool:
    """An instruction of the data machine: a new mnemonic, or a v0 one with
    a register, an array slot or an rseq field as an operand."""
    if ins.op in DATA_OPS:
        return True
    if ins.op not in V0_OPS:
        return False
    ops = [a for a in ins.args[:2] if isinstance(a, str)]
    return any(is_reg(a) or "[" in a or a.startswith("rseq.") for a in ops)


def operands(ins: Instr) -> list[str]:
    """The register and memory operands an instruction names (indexes too)."""
    if ins.op == "getcpu":
        return [ins.args[0]]
    if ins.op not in V0_OPS + DATA_OPS:
        return []
    out: list[str] = []
    for a in ins.args[:2]:
        if not isinstance(a, str):
            continue
        m = MEM.match(a)
        if m and m.group(3) and is_reg(m.group(3)):
            out.append(m.group(3))
        out.append(a)
    return out


def expr_regs(e: AExpr) -> set[str]:
    """The registers an expression reads, an array index's included."""
    out = set()
    for v in expr_vars(e):
        m = MEM.match(v)
        if is_reg(v):
            out.add(v)
        elif m and m.group(3) and is_reg(m.group(3)):
            out.add(m.group(3))
    return out


def registers(code) -> list[str]:
    regs: set[str] = set()
    for _, ins in code:
        regs |= {a for a in operands(ins) if is_reg(a)}
        if ins.op == "assert":
            regs |= expr_regs(ins.expr)
    return sorted(regs, key=lambda r: int(r[2:]))


def written_registers(segs) -> set[str]:
    """Registers some instruction of these code blocks writes."""
    return {ins.args[0] for s in segs for ins in s.instrs
            if ins.op in ("mov", "load", "add", "sub", "getcpu") and is_reg(ins.args[0])}


def field_name(text: str, path: str, line: int) -> str | None:
    if not text.startswith("rseq."):
        return None
    f = text[5:]
    if f not in RSEQ_FIELDS:
        raise SpecError(path, line, f"rseq.{f}: the rseq area's fields are {', '.join(RSEQ_FIELDS)}")
    return f


def uses_fields(code) -> bool:
    return any(a.startswith("rseq.") for _, ins in code for a in operands(ins)) or any(
        ins.op == "assert" and any(v.startswith("rseq.") for v in _expr_names(ins)) for _, ins in code)


def _expr_names(ins: Instr) -> set[str]:
    return expr_vars(ins.expr) if ins.expr is not None else set()


def hull(b) -> tuple[int, int]:
    """The range a register holds: every declared range, every constant the
    data instructions use, and the CPU ids with -1/-2 when CPU data is used."""
    lo, hi = 0, 0
    for r in list(b.spec.variables.values()) + list(b.spec.arrays.values()):
        lo, hi = min(lo, r[0]), max(hi, r[1])
    for _, ins in b.code:
        if is_data(ins) or ins.op in ("store", "add", "beq", "bne"):
            for a in ins.args[:2]:
                if isinstance(a, int):
                    lo, hi = min(lo, a), max(hi, a)
    if b.cpu_data:
        lo, hi = min(lo, REGISTRATION_FAILED), max(hi, b.env.cpus - 1)
    return lo, hi


# ------------------------------------------------------------ locations


def locations(b, t, text: str, line: int) -> tuple[list[tuple[Expr, Var | Expr]], Expr | None]:
    """Where a memory or register operand lives: (guard, Var) cases, and
    the guard of an out-of-bounds index (None if it cannot happen).  A
    read-only location (rseq.node_id) is a (guard, Expr) case."""
    if is_reg(text):
        return [(Const(1), t.regs[text])], None
    f = field_name(text, b.spec.path, line)
    if f is not None:
        if f == "node_id":
            return [(Const(1), Const(0))], None
        if f == "mm_cid":
            return [(Const(1), t.cid_field)], None
        return [(Const(1), t.rs[f])], None
    m = MEM.match(text)
    assert m is not None, text
    name, idx = (m.group(1) or "") + m.group(2), m.group(3)
    if idx is None:
        if name not in b.uvars and name not in t.tls:
            if name in b.slots:
                raise SpecError(b.spec.path, line, f"{name} is a per-CPU array: index it, e.g. {name}[%r0]")
            raise SpecError(b.spec.path, line, f"{name}: not a variable")
        return [(Const(1), b.uvar(t, name))], None
    if name not in b.slots:
        raise SpecError(b.spec.path, line, f"{name}[...]: no per-CPU array {name} (declare \"{name}[cpu]\" = [MIN, MAX] in [variables])")
    slots = b.slots[name]
    if not is_reg(idx):
        if int(idx) >= len(slots):
            raise SpecError(b.spec.path, line, f"{name}[{idx}]: the array has {len(slots)} slots (one per CPU)")
        return [(Const(1), slots[int(idx)])], None
    r = t.regs[idx]
    cases: list[tuple[Expr, Var | Expr]] = [(Eq(r, c), v) for c, v in enumerate(slots) if r.type.lo <= c <= r.type.hi]
    oob = Or(Lt(r, 0), Ge(r, len(slots))) if r.type.lo < 0 or r.type.hi >= len(slots) else None
    return cases, oob


def bounds(x: Var | Expr | int) -> tuple[int, int]:
    if isinstance(x, int):
        return x, x
    if isinstance(x, Var):
        return x.type.lo, x.type.hi
    if isinstance(x, Const):
        return x.value, x.value
    if isinstance(x, Ref):
        return x.var.type.lo, x.var.type.hi
    raise TypeError(x)


def wrap(e: Expr, elo: int, ehi: int, lo: int, hi: int) -> Expr:
    """e (known to lie in elo..ehi) brought into lo..hi modulo its size."""
    if lo <= elo and ehi <= hi:
        return e
    size = hi - lo + 1
    kmin, kmax = (elo - lo) // size, (ehi - lo) // size
    out: Expr = Sub(e, kmax * size) if kmax else e
    for k in range(kmax - 1, kmin - 1, -1):
        out = Ite(Lt(e, lo + (k + 1) * size), Sub(e, k * size) if k else e, out)
    return out


def _src(b, t, x: int | str, line: int) -> tuple[Expr, int, int]:
    if isinstance(x, int):
        return Const(x), x, x
    v = t.regs[x]
    return Ref(v), v.type.lo, v.type.hi


# ----------------------------------------------------------- instructions


def instr_cases(b, t, ins: Instr, ip: Var, nxt: int, target: int | None):
    """The outcomes of a data instruction as cases (the caller's common
    updates move `ip` to `nxt`; a branch sets it here), and the guard of an
    index that faults (or None)."""
    label = ins.text
    op = ins.op
    out: list[Case] = []
    if op == "mov":
        e, lo, hi = _src(b, t, ins.args[1], ins.line)
        dst = t.regs[ins.args[0]]
        out.append(Case(Const(1), {dst: wrap(e, lo, hi, dst.type.lo, dst.type.hi)}, label))
        return out, None
    if op == "load":
        dst = t.regs[ins.args[0]]
        locs, oob = locations(b, t, ins.args[1], ins.line)
        for g, v in locs:
            lo, hi = bounds(v)
            out.append(Case(g, {dst: wrap(lift(v), lo, hi, dst.type.lo, dst.type.hi)}, label))
        return out, oob
    if op == "store":
        e, lo, hi = _src(b, t, ins.args[1], ins.line)
        locs, oob = locations(b, t, ins.args[0], ins.line)
        for g, v in locs:
            if not isinstance(v, Var):
                raise SpecError(b.spec.path, ins.line, f"{ins.args[0]} cannot be written (read-only in the model)")
            out.append(Case(g, {v: wrap(e, lo, hi, v.type.lo, v.type.hi)}, label))
        return out, oob
    if op in ("add", "sub"):
        e, lo, hi = _src(b, t, ins.args[1], ins.line)
        locs, oob = locations(b, t, ins.args[0], ins.line)
        for g, v in locs:
            if not isinstance(v, Var):
                raise SpecError(b.spec.path, ins.line, f"{ins.args[0]} cannot be written (read-only in the model)")
            if op == "add":
                val, vlo, vhi = Add(v, e), v.type.lo + lo, v.type.hi + hi
            else:
                val, vlo, vhi = Sub(v, e), v.type.lo - hi, v.type.hi - lo
            out.append(Case(g, {v: wrap(val, vlo, vhi, v.type.lo, v.type.hi)}, label))
        return out, oob
    if op in BRANCHES:
        assert target is not None
        e, _, _ = _src(b, t, ins.args[1], ins.line)
        locs, oob = locations(b, t, ins.args[0], ins.line)
        test = {"beq": Eq, "bne": Ne, "blt": Lt, "bge": Ge}[op]
        for g, v in locs:
            out.append(Case(g, {ip: Ite(test(lift(v), e), target, nxt)}, label))
        return out, oob
    raise AssertionError(op)



# ------------------------------------------------- dead register reduction


def _uses_defs(ins: Instr) -> tuple[set[str], set[str]]:
    if ins.op == "assert":
        return expr_regs(ins.expr), set()
    if ins.op == "getcpu":
        return set(), {ins.args[0]}
    if ins.op not in V0_OPS + DATA_OPS:
        return set(), set()
    regs = {a for a in operands(ins) if is_reg(a)}
    if ins.op in ("mov", "load"):
        dst = ins.args[0]
        uses = {a for a in operands(ins)[1:] if is_reg(a)} if ins.op == "load" else {a for a in ins.args[1:2] if is_reg(a)}
        return uses, {dst}
    return regs, set()


def liveness(seg, sections: list[tuple[int, int, int]], always_live: set[str] = frozenset()
             ) -> tuple[list[set[str]], list[set[str]]]:
    """(live before, live after) each instruction of a code block: the
    registers some later instruction may read.  Edges: the next
    instruction, branch and jump targets, an execve's target, the
    instruction itself (a restarted syscall, a re-executed fault) and the
    abort label from inside each section, given as local (start, post,
    abort) indices.  `always_live`: registers a signal handler may read."""
    n = len(seg.instrs)
    succ: list[set[int]] = []
    for i, ins in enumerate(seg.instrs):
        s: set[int] = set()
        if ins.op not in ("exit", "jmp", "sigreturn", "execve") and i + 1 < n:
            s.add(i + 1)
        if ins.op == "jmp":
            s.add(seg.labels[ins.args[0]])
        if ins.op in BRANCHES:
            s.add(seg.labels[ins.args[2]])
        if ins.op == "execve" and ins.args[0] in seg.labels:
            s.add(seg.labels[ins.args[0]])
        if ins.op in ("syscall", "fault"):
            s.add(i)
        succ.append(s)
    for start, post, abort in sections:
        for g in range(start, post):
            succ[g].add(abort)
    ud = [_uses_defs(ins) for ins in seg.instrs]
    live_in: list[set[str]] = [set() for _ in range(n)]
    live_out: list[set[str]] = [set(always_live) for _ in range(n)]
    changed = True
    while changed:
        changed = False
        for i in range(n - 1, -1, -1):
            out = set(always_live).union(*(live_in[j] for j in succ[i]))
            inn = ud[i][0] | (out - ud[i][1])
            if out != live_out[i] or inn != live_in[i]:
                live_out[i], live_in[i] = out, inn
                changed = True
    return live_in, live_out


def dead_after(b, seg, always_live: set[str]) -> list[set[str]]:
    """For each instruction of a code block, the registers whose value no
    later instruction can read (`liveness`): a step resets them to 0, so
    states that differ only in dead registers are one (SPIN's dead variable
    reduction).  `always_live`: registers a signal handler may read as the
    interrupted code left them."""
    sections = [(c.start - seg.base, c.post - seg.base, c.abort - seg.base) for c in b.cs if c.seg is seg]
    _, live_out = liveness(seg, sections, always_live)
    regs = set(b.reg_names)
    return [regs - out for out in live_out]


_BIN = {"==": Eq, "!=": Ne, "<": Lt, "<=": Le, ">": Gt, ">=": Ge, "+": Add, "-": Sub}


def to_ir(e: AExpr, b, t, line: int = 0, oob: list[Expr] | None = None) -> Expr:
    """EXPR of an assert or an always/eventually/sometimes property as
    an IR expression over thread t's registers, fields and the user
    variables.  `line`: the assert's line, or the property's in the TOML,
    for an error about a name in it (an unknown array, an index out of
    range, a field that is not one).  A slot indexed by a register,
    `cnt[%r0]`, is the slot the register names; when the register can be
    out of the array's range, that condition is appended to `oob` (an
    assert fails there; model/progress.py refuses registers in a property)."""
    if e.op == "int":
        return Const(e.args[0])
    if e.op == "var":
        name = e.args[0]
        if is_reg(name) or "[" in name or name.startswith("rseq."):
            if is_reg(name) and name not in t.regs:
                raise SpecError(b.spec.path, line, f"{name}: no instruction uses this register")
            locs, bad = locations(b, t, name, line)
            if bad is not None and oob is not None:
                oob.append(bad)
            out: Expr = Const(0)
            for guard, loc in reversed(locs):  # the slot the register names
                val = Ref(loc) if isinstance(loc, Var) else loc
                out = val if isinstance(guard, Const) and guard.value else Ite(guard, val, out)
            return out
        return Ref(b.uvar(t, name))
    if e.op == "!":
        return Not(to_ir(e.args[0], b, t, line, oob))
    if e.op == "&&":
        return And(to_ir(e.args[0], b, t, line, oob), to_ir(e.args[1], b, t, line, oob))
    if e.op == "||":
        return Or(to_ir(e.args[0], b, t, line, oob), to_ir(e.args[1], b, t, line, oob))
    return _BIN[e.op](to_ir(e.args[0], b, t, line, oob), to_ir(e.args[1], b, t, line, oob))
