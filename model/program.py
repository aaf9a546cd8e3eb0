"""The spec's small assembly: parsing of thread and handler code.

v0 instructions: nop, jmp L, store VAR, VALUE, set_desc VALUE|0,
rseq_cs NAME|0, syscall NAME [@tag], sigreturn, exit, assert EXPR; later
ones in docs/spec-format.md (the data machine's registers and memory
operands: model/data.py).
Labels end with ':'; ';' starts a comment.  Each parsed instruction keeps the
file line it came from so that errors and traces can point at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rseqcheck.model.errors import SpecError

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")

MNEMONICS = (
    "nop", "jmp", "store", "set_desc", "rseq_cs", "syscall", "sigreturn", "exit", "assert",
    "sud_on", "sud_off", "sud_select",
    "add", "beq", "bne", "rseq_register", "rseq_unregister",
    "set_tf", "clear_tf",
    "clone", "fork", "execve", "membarrier_rseq", "dlclose", "fault",
    "mov", "load", "sub", "blt", "bge", "getcpu", "sched_setaffinity", "abort",
)  # fmt: skip

# Conditional branches: beq/bne (v0) and the ordered compares of the data machine.
BRANCHES = ("beq", "bne", "blt", "bge")

# Instructions that enter the kernel through the syscall path.
SYSCALL_OPS = ("syscall", "sigreturn", "exit", "sud_on", "sud_off", "rseq_register", "rseq_unregister",
               "clone", "fork", "execve", "membarrier_rseq", "getcpu", "sched_setaffinity")

VARNAME = re.compile(r"(tls\.)?[A-Za-z_][A-Za-z0-9_]*$")
# The data machine (model/data.py): registers %r0..%r15, and memory operands:
# a user variable, a per-CPU slot ARRAY[%rN] / ARRAY[N], or a field of the
# thread's rseq area.
REG = re.compile(r"%r(?:1[0-5]|[0-9])$")
NREGS = 16  # %r0..%r15: REG, MEM and the usage messages say so
REG_RANGE = f"%r0..%r{NREGS - 1}"
# anything that looks like a register: `%` and a name (checked by check_registers)
_PCT = re.compile(r"%[A-Za-z0-9_]*")
RSEQ_FIELDS = ("cpu_id_start", "cpu_id", "node_id", "mm_cid")
MEM = re.compile(r"(?:(tls\.)?([A-Za-z_][A-Za-z0-9_]*)(?:\[(%r(?:1[0-5]|[0-9])|[0-9]+)\])?|rseq\.([a-z_]+))$")


def is_reg(x: object) -> bool:
    return isinstance(x, str) and REG.match(x) is not None


def is_mem(x: str) -> bool:
    """A memory operand: VAR, tls.VAR, ARRAY[%rN], ARRAY[N] or rseq.FIELD."""
    m = MEM.match(x)
    if not m:
        return False
    if m.group(4) is not None:
        return True  # the field's name is checked with the model (model/data.py:field_name)
    return not (m.group(1) and m.group(3))  # no tls arrays


def check_registers(text: str, file: str, line: int) -> None:
    """Every `%`-name in an operand or an expression is a register: `%r16`
    or `%rax` is an error here, not a variable of that name (an assert
    would read it as a global that stays 0) or a vague usage message."""
    for m in _PCT.finditer(text):
        name = m.group(0)
        if is_reg(name):
            continue
        if re.fullmatch(r"%r[1-9][0-9]*", name):
            raise SpecError(file, line, f"register {name} is out of range: the registers are {REG_RANGE}")
        raise SpecError(file, line, f"{name!r} is not a register: the registers are {REG_RANGE}")
# what rseq() can return: its own errors, and any errno a seccomp filter
# gives it (SECCOMP_RET_ERRNO; ENOSYS and EACCES are common filter choices)
RSEQ_ERRORS = ("0", "EINVAL", "EPERM", "EBUSY", "EFAULT", "ENOSYS", "EACCES")
# the errnos a seccomp filter may name (`errno:NAME`)
ERRNOS = RSEQ_ERRORS[1:]
# what `ret` (any syscall's result) can hold: 0 is any success
RET_VALUES = RSEQ_ERRORS + ("EAGAIN", "EINTR")
# rseq() areas with a meaning: a kernel address (access_ok fails) and a user
# page that is not mapped (faults when the kernel touches it)
BAD_AREAS = ("kernel", "unmapped")
# Signals a `fault` instruction raises; SIGTRAP (int3) is a trap (the ip
# moves past it), the others are faults (the ip stays on the instruction).
FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP")


@dataclass
class Instr:
    op: str
    args: tuple = ()
    tag: str | None = None  # syscall @tag
    line: int = 0  # file line
    text: str = ""  # source text, for traces
    labels: list[str] = field(default_factory=list)
    expr: AExpr | None = None  # for assert


@dataclass
class Segment:
    """One block of code: a thread's program or a signal handler."""

    name: str  # "T0" or "handler SIGUSR1"
    kind: str  # "thread" | "handler"
    instrs: list[Instr]
    labels: dict[str, int]  # label -> local index
    base: int = 0  # global index of instrs[0]


# --------------------------------------------------------- assert expressions


@dataclass(frozen=True)
class AExpr:
    op: str  # "int", "var", or an operator
    args: tuple


_TOK = re.compile(r"\s*(?:(\d+)|((?:tls\.|rseq\.)?[A-Za-z_][A-Za-z0-9_]*(?:\[(?:[0-9]+|%r(?:1[0-5]|[0-9]))\])?"
                  r"|%r(?:1[0-5]|[0-9]))|(==|!=|<=|>=|&&|\|\||[-+<>!()]))")

_BIN = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5}


def parse_expr(text: str, file: str, line: int) -> AExpr:
    toks: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    check_registers(text, file, line)
    while pos < len(text):
        m = _TOK.match(text, pos)
        if not m or m.end() == pos:
            raise SpecError(file, line, f"cannot parse expression {text!r} at {text[pos:]!r}")
        if m.group(1):
            toks.append(("int", m.group(1)))
        elif m.group(2):
            toks.append(("var", m.group(2)))
        else:
            toks.append(("op", m.group(3)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    k = 0

    def peek() -> tuple[str, str] | None:
        return toks[k] if k < len(toks) else None

    def unary() -> AExpr:
        nonlocal k
        t = peek()
        if t is None:
            raise SpecError(file, line, f"expression {text!r} ends early")
        k += 1
        if t == ("op", "!"):
            return AExpr("!", (unary(),))
        if t == ("op", "-"):
            return AExpr("-", (AExpr("int", (0,)), unary()))
        if t == ("op", "("):
            e = binary(1)
            if peek() != ("op", ")"):
                raise SpecError(file, line, f"missing ')' in {text!r}")
            k += 1
            return e
        if t[0] == "int":
            return AExpr("int", (int(t[1]),))
        if t[0] == "var":
            return AExpr("var", (t[1],))
        raise SpecError(file, line, f"unexpected {t[1]!r} in {text!r}")

    def binary(minp: int) -> AExpr:
        nonlocal k
        left = unary()
        while True:
            t = peek()
            if t is None or t[0] != "op" or t[1] not in _BIN or _BIN[t[1]] < minp:
                return left
            k += 1
            right = binary(_BIN[t[1]] + 1)
            left = AExpr(t[1], (left, right))

    try:
        e = binary(1)
    except RecursionError:  # thousands of parentheses: refuse, do not crash
        raise SpecError(file, line, f"expression nested too deeply: {text[:40]!r}...") from None
    if k != len(toks):
        raise SpecError(file, line, f"unexpected {toks[k][1]!r} in {text!r}")
    return e


def expr_vars(e: AExpr) -> set[str]:
    if e.op == "var":
        return {e.args[0]}
    if e.op == "int":
        return set()
    out: set[str] = set()
    for a in e.args:
        out |= expr_vars(a)
    return out


def expr_ints(e: AExpr) -> set[int]:
    if e.op == "int":
        return {e.args[0]}
    if e.op == "var":
        return set()
    out: set[int] = set()
    for a in e.args:
        out |= expr_ints(a)
    return out


# ------------------------------------------------------------------- parsing


def parse_code(text: str, name: str, kind: str, file: str, first_line: int) -> Segment:
    instrs: list[Instr] = []
    labels: dict[str, int] = {}
    pending: list[tuple[str, int]] = []
    for off, raw in enumerate(text.split("\n")):
        line = first_line + off
        src = raw.split(";", 1)[0].strip()
        while True:
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:(?!=)\s*", src)
            if not m:
                break
            lab = m.group(1)
            if lab in labels or any(lab == p for p, _ in pending):
                raise SpecError(file, line, f"label {lab!r} defined twice in {name}")
            pending.append((lab, line))
            src = src[m.end() :]
        if not src:
            continue
        parts = src.split(None, 1)
        op = parts[0]
        rest = parts[1].strip() if len(parts) > 1 else ""
        ins = _parse_instr(op, rest, file, line, name)
        ins.text = src
        for lab, _ in pending:
            labels[lab] = len(instrs)
            ins.labels.append(lab)
        pending = []
        instrs.append(ins)
    # Falling off the end: a thread exits, a handler returns to its restorer
    # (sa_restorer calls rt_sigreturn).  Made explicit so traces show it, at
    # the line where the block ends (end_line), not at its first line, which
    # read as a jump back to the top.
    implicit = Instr("exit" if kind == "thread" else "sigreturn", line=end_line(text, first_line, instrs, pending),
                     text="(end of code)")
    for lab, _ in pending:
        labels[lab] = len(instrs)
        implicit.labels.append(lab)
    if not instrs or instrs[-1].op not in ("exit", "sigreturn", "jmp"):
        instrs.append(implicit)
    elif pending:
        instrs.append(implicit)
    return Segment(name, kind, instrs, labels)


def end_line(text: str, first_line: int, instrs: list[Instr], pending: list[tuple[str, int]]) -> int:
    """The line of a code block's implicit end: the line of the label(s)
    that name it (`done:` after the last instruction), else the block's
    last line (that of the closing quotes when they stand on a line of
    their own), and at least the line after the last instruction."""
    if pending:
        return pending[0][1]
    last = first_line + text.count("\n")
    return max(last, instrs[-1].line + 1) if instrs else last


def _args(rest: str) -> list[str]:
    return [a.strip() for a in rest.split(",")] if rest else []


def _src(x: str) -> int | str | None:
    """A source operand: an integer or a register (None if neither)."""
    if is_reg(x):
        return x
    try:
        return int(x, 0)
    except ValueError:
        return None


def _parse_instr(op: str, rest: str, file: str, line: int, where: str) -> Instr:
    if op not in MNEMONICS:
        raise SpecError(file, line, f"unknown instruction {op!r} (known: {', '.join(MNEMONICS)})")
    check_registers(rest, file, line)
    if op == "sud_on":
        # prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, START, END-START, &selector|NULL)
        # or PR_SYS_DISPATCH_INCLUSIVE_ON (6.17+): [START, END) is then the
        # intercepted region instead of the allowed one
        args = _args(rest)
        flags = args[2:]
        if (len(args) < 2 or not all(IDENT.match(a) for a in args[:2]) or len(set(flags)) != len(flags)
                or not set(flags) <= {"noselector", "inclusive"}):
            raise SpecError(file, line, "sud_on takes START, END [, noselector] [, inclusive] (labels of the region)")
        return Instr(op, (args[0], args[1], *sorted(flags)), line=line)
    if op in ("rseq_register", "rseq_unregister"):
        # rseq(area, len, flags, sig): AREA names a struct rseq in TLS ("tls"
        # is glibc's), LEN the registered length, SIG RSEQ_SIG or "other"
        args = _args(rest)
        defaults = ["tls", "32", "RSEQ_SIG"]
        if len(args) > 3:
            raise SpecError(file, line, f"{op} takes [AREA [, LEN [, SIG]]]")
        args = args + defaults[len(args):]
        if not IDENT.match(args[0]) or not args[1].isdigit() or args[2] not in ("RSEQ_SIG", "other"):
            raise SpecError(file, line, f"{op} takes [AREA [, LEN [, RSEQ_SIG|other]]], e.g. '{op} tls, 32, RSEQ_SIG'")
        return Instr(op, (args[0], int(args[1]), args[2]), line=line)
    if op in ("add", "sub", "mov", "load"):
        # add/sub DST, SRC (DST a register or memory; v0: add VAR, N);
        # mov REG, SRC; load REG, MEM (model/data.py)
        args = _args(rest)
        src = _src(args[1]) if len(args) == 2 else None
        usage = {"add": "DST, SRC (DST a register or a variable, SRC an integer or a register)",
                 "sub": "DST, SRC (DST a register or a variable, SRC an integer or a register)",
                 "mov": "REG, SRC (REG one of %r0..%r15, SRC an integer or a register)",
                 "load": "REG, MEM (REG one of %r0..%r15; MEM a variable, ARRAY[%rN], ARRAY[N] or rseq.FIELD)"}[op]
        if op == "load":
            if len(args) != 2 or not is_reg(args[0]) or not is_mem(args[1]):
                raise SpecError(file, line, f"load takes {usage}")
            return Instr(op, (args[0], args[1]), line=line)
        dst_ok = len(args) == 2 and (is_reg(args[0]) if op == "mov" else (is_reg(args[0]) or is_mem(args[0])))
        if src is None or not dst_ok:
            raise SpecError(file, line, f"{op} takes {usage}")
        return Instr(op, (args[0], src), line=line)
    if op == "getcpu":
        # getcpu(&cpu, NULL): the CPU the body ran on, into a register
        if not is_reg(rest):
            raise SpecError(file, line, "getcpu takes a register (%r0..%r15)")
        return Instr(op, (rest,), line=line)
    if op == "sched_setaffinity":
        # sched_setaffinity(0, {N}): the thread moves to CPU N and stays there
        if not rest.isdigit():
            raise SpecError(file, line, "sched_setaffinity takes a CPU number")
        return Instr(op, (int(rest),), line=line)
    if op in BRANCHES:
        args = _args(rest)
        if len(args) != 3 or not (is_reg(args[0]) or is_mem(args[0])) or not IDENT.match(args[2]):
            raise SpecError(file, line, f"{op} takes A, B, LABEL (A a register or a variable, B an integer or a register)")
        val = _src(args[1])
        if val is None:
            if args[1] not in RET_VALUES or op not in ("beq", "bne"):
                raise SpecError(file, line, f"{op}: {args[1]!r} is not an integer, a register or one of {', '.join(RET_VALUES[1:])}")
            val = args[1]
        return Instr(op, (args[0], val, args[2]), line=line)
    if op in ("clone", "fork", "execve"):
        # clone THREAD [, raw]: pthread_create (glibc registers the child's
        # rseq) or the raw syscall; fork THREAD: a child process running
        # THREAD's code; execve LABEL: the new image starts at LABEL
        args = _args(rest)
        usage = {"clone": "clone THREAD [, raw]", "fork": "fork THREAD", "execve": "execve LABEL"}[op]
        if not args or not IDENT.match(args[0]) or args[1:] not in ([], ["raw"]) or (args[1:] and op != "clone"):
            raise SpecError(file, line, f"{op} takes {usage.split(' ', 1)[1]}")
        return Instr(op, tuple(args), line=line)
    if op == "sud_select":
        args = _args(rest)
        # `unmapped`: the selector's page goes away (munmap), so the next read faults
        if len(args) != 1 or not (args[0] in ("ALLOW", "BLOCK", "unmapped") or args[0].isdigit()):
            raise SpecError(file, line, "sud_select takes ALLOW, BLOCK, unmapped or a byte value")
        return Instr(op, (args[0],), line=line)
    if op in ("nop", "sigreturn", "exit", "sud_off", "set_tf", "clear_tf", "membarrier_rseq", "abort"):
        if rest:
            raise SpecError(file, line, f"{op} takes no operand")
        return Instr(op, line=line)
    if op == "assert":
        if not rest:
            raise SpecError(file, line, "assert needs an expression")
        return Instr(op, (rest,), line=line, expr=parse_expr(rest, file, line))
    if op == "syscall":
        toks = rest.split()
        if not toks or not IDENT.match(toks[0]):
            raise SpecError(file, line, "syscall needs a name, e.g. 'syscall getpid'")
        tag = None
        for t in toks[1:]:
            if not t.startswith("@") or not IDENT.match(t[1:]):
                raise SpecError(file, line, f"unexpected {t!r} after syscall (only '@tag')")
            if tag is not None:
                raise SpecError(file, line, "a syscall takes one @tag")
            tag = t[1:]
        return Instr(op, (toks[0],), tag=tag, line=line)
    args = _args(rest)
    if op == "jmp":
        if len(args) != 1 or not IDENT.match(args[0]):
            raise SpecError(file, line, "jmp takes one label")
        return Instr(op, (args[0],), line=line)
    if op == "store":
        # store MEM, SRC: v0's store VAR, N, and the data machine's stores of
        # a register, to a per-CPU slot or an rseq area field
        if len(args) != 2 or not is_mem(args[0]):
            raise SpecError(file, line, "store takes MEM, VALUE (MEM a variable, ARRAY[%rN], ARRAY[N] or rseq.FIELD; "
                            "VALUE an integer or a register)")
        val = _src(args[1])
        if val is None:
            raise SpecError(file, line, f"store value {args[1]!r} is not an integer or a register")
        return Instr(op, (args[0], val), line=line)
    if op == "fault":
        # an instruction that raises a synchronous exception: a bad load
        # (SIGSEGV/SIGBUS), ud2 (SIGILL), a division (SIGFPE), int3 (SIGTRAP)
        if len(args) != 1 or args[0] not in FAULT_SIGNALS:
            raise SpecError(file, line, f"fault takes one of {', '.join(FAULT_SIGNALS)}")
        return Instr(op, (args[0],), line=line)
    if op == "dlclose":
        # the library holding descriptor NAME is unloaded: its page is unmapped
        if len(args) != 1 or not IDENT.match(args[0]):
            raise SpecError(file, line, "dlclose takes the name of a [rseq_cs.NAME] descriptor")
        return Instr(op, (args[0],), line=line)
    if op in ("set_desc", "rseq_cs"):
        if len(args) != 1 or not (args[0] == "0" or IDENT.match(args[0])):
            raise SpecError(file, line, f"{op} takes one name or 0")
        return Instr(op, (args[0],), line=line)
    raise AssertionError(op)
