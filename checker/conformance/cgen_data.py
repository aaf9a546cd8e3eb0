"""The data machine on x86-64 (model/data.py): what checker/conformance/cgen.py emits
for registers, loads and stores, per-CPU arrays, the rseq area's fields and
`[thread.T] cpu` placement.

Registers.  %r0..%r8 live in machine registers that no other emitted code
uses for itself (r12 = shared page, r13 = glibc's struct rseq, r14 = a
handler's entry rsp; rax, rcx and r11 are scratch: `syscall` clobbers rcx
and r11, the spin loop uses ecx):

  %r0 rbp   %r1 r15   %r2 rbx   %r3 r9   %r4 r8   %r5 r10   %r6 rsi
  %r7 rdi   %r8 rdx

%r9..%r15 are refused (no machine register is left).  A block that keeps a
register in a machine register an instruction of the same block clobbers
(the argument set-up of read/nanosleep/rseq()/prctl/membarrier/munmap, the
call of `clone`, the divide of `fault SIGFPE`) is refused at that
instruction.  A thread's block starts with its registers at 0, as the
model's.  The kernel saves every register in a signal frame and
rt_sigreturn restores them, so a handler that writes registers leaves the
interrupted code's values as the model does; a handler that *reads* one
before writing it is refused: it would see the interrupted context's value,
and a signal can interrupt C code of the runner that is not the spec's
(before a block starts, inside clone's pthread_create).

Values.  A register holds the model's hull (model/data.py:hull) and every
write wraps around its destination's range as model/data.py:wrap does:
statically known in-range values get no code, others a compare-and-subtract
loop.  Memory: user variables and per-CPU slots are 8-byte words of the
shared page (a per-CPU array is `cpus` consecutive slots), `tls.X` a word
of the thread's TLS; the rseq fields are the u32 words of glibc's area at
r13 (cpu_id_start at 0, cpu_id at 4, node_id at 20), loaded sign-extended so
that -1/-2 read as in the model.

  load REG, MEM   movq/movslq MEM, REG
  mov REG, SRC    movq
  store MEM, SRC  xchgq (a full fence: the model is sequentially
                  consistent, x86 is TSO); movl to an rseq field, movq to tls
  add/sub REG, X  movq, addq/subq, wrap, movq
  add/sub MEM, X  a lock cmpxchg loop: atomic against other CPUs and against
                  a handler or the kernel writing MEM between the load and
                  the store, as the model's one step
  beq/bne/blt/bge A, B, L   cmpq + je/jne/jl/jge (signed)
  ARR[%rN]        cmpq $cpus, REG; jb; a load from address 0 (SIGSEGV, as
                  the model's out-of-range index), then OFF(%r12,REG,8)

In a spec with data, the v0 forms (store/add/beq/bne on plain variables) go
through the same code, so `add done, 1` from two CPUs is atomic too.
"""

from __future__ import annotations

from rseqcheck.model import data
from rseqcheck.model.program import BRANCHES, MEM, Instr, Segment, is_reg
from rseqcheck.model.spec import Spec

# model register -> machine register
REGS = ("%rbp", "%r15", "%rbx", "%r9", "%r8", "%r10", "%rsi", "%rdi", "%rdx")
# struct rseq (include/uapi/linux/rseq.h): u32 fields the model names
FIELD_OFF = {"cpu_id_start": 0, "cpu_id": 4, "node_id": 20}
SIGNED_JCC = {"beq": "je", "bne": "jne", "blt": "jl", "bge": "jge"}
SPECIAL = ("rseq_ret", "rseq_size", "ret")  # v0 branch operands cgen handles itself


def uses_data(spec: Spec) -> bool:
    """The spec has data instructions, per-CPU arrays or placed threads."""
    segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
    return bool(spec.arrays) or any(t.cpu is not None for t in spec.threads) or any(
        data.is_data(ins) for s in segs for ins in s.instrs)


def clobbers(ins: Instr) -> set[str]:
    """Machine registers (of REGS) an emitted model instruction overwrites."""
    op = ins.op
    if op == "syscall":
        return {"read": {"%rdi", "%rsi", "%rdx"}, "nanosleep": {"%rdi", "%rsi"}}.get(ins.args[0], set())
    if op in ("rseq_register", "rseq_unregister"):
        return {"%rdi", "%rsi", "%rdx", "%r10"}
    if op in ("sud_on", "sud_off"):
        return {"%rdi", "%rsi", "%rdx", "%r10", "%r8"}
    if op == "membarrier_rseq":
        return {"%rdi", "%rsi", "%rdx"}
    if op == "dlclose":
        return {"%rdi", "%rsi"}
    if op == "clone":  # rbx keeps rsp; the call clobbers the caller-saved ones
        return {"%rbx", "%rdi", "%rsi", "%rdx", "%r8", "%r9", "%r10"}
    if op == "fault" and ins.args[0] == "SIGFPE":
        return {"%rdx"}
    return set()


def _imm(n: int) -> str:
    return f"${n}"


def wrap_int(n: int, lo: int, hi: int) -> int:
    """n brought into lo..hi modulo its size (model/data.py:wrap on a constant)."""
    return lo + (n - lo) % (hi - lo + 1)


def wrap_asm(reg: str, elo: int, ehi: int, lo: int, hi: int) -> list[str]:
    """Bring `reg` (known to lie in elo..ehi) into lo..hi modulo its size, as
    model/data.py:wrap: nothing when it cannot leave the range."""
    if lo <= elo and ehi <= hi:
        return []
    size = hi - lo + 1
    out: list[str] = []
    if ehi > hi:
        out += [f"7: cmpq ${hi}, {reg}", "jle 8f", f"subq ${size}, {reg}", "jmp 7b", "8:"]
    if elo < lo:
        out += [f"7: cmpq ${lo}, {reg}", "jge 8f", f"addq ${size}, {reg}", "jmp 7b", "8:"]
    return out


class Loc:
    """Where a memory operand lives: its address (after `pre`, the index
    check), its width and its range."""

    def __init__(self, pre: list[str], addr: str, width: int, lo: int, hi: int, shared: bool):
        self.pre, self.addr, self.width, self.lo, self.hi, self.shared = pre, addr, width, lo, hi, shared

    def load(self, reg: str) -> str:
        return f"movq {self.addr}, {reg}" if self.width == 8 else f"movslq {self.addr}, {reg}"


class DataGen:
    """The data machine of one spec, as the model builds it."""

    def __init__(self, spec: Spec, gen):
        from rseqcheck.checker.outcomes import outcome_spec
        from rseqcheck.model.build import build_system

        self.spec, self.gen = spec, gen
        # the model the runs are compared with: its register hull, its
        # outcome variables (checker/outcomes.py:projection_for) and slots
        b = build_system(outcome_spec(spec)).meta["builder"]
        self.hull: tuple[int, int] = b.data_range
        self.ncpu = b.env.cpus
        self.globals = sorted(b.uvars)
        self.ranges = dict(b.uvar_range)
        self.arrays = {a: r for a, r in sorted(spec.arrays.items())}
        names = list(self.globals)
        for a in self.arrays:
            names += [f"{a}[{c}]" for c in range(self.ncpu)]
        self.names = names  # the shared page's words, in order (the program prints them so)
        tls: set[str] = set()
        for seg in gen.segments():
            for ins in seg.instrs:
                for a in data.operands(ins):
                    if isinstance(a, str) and a.startswith("tls."):
                        tls.add(a)
        self.tls = sorted(tls)
        self.migrates = spec.env.migration

    # ------------------------------------------------------------ checks

    def _at(self, ins: Instr) -> str:
        return f"{self.spec.path}:{ins.line}: {ins.text or ins.op}"

    def machine(self, r: str, ins: Instr) -> str:
        n = int(r[2:])
        if n >= len(REGS):
            from rseqcheck.checker.conformance.cgen import Unsupported

            raise Unsupported(f"{self._at(ins)}: {r}: no free machine register (the generator maps %r0..%r{len(REGS) - 1} "
                              f"onto {', '.join(x[1:] for x in REGS)})")
        return REGS[n]

    def check(self) -> None:
        """Refuse what the machine cannot do as the model does."""
        from rseqcheck.checker.conformance.cgen import Unsupported

        segs = self.gen.segments()
        bounds = [self.hull, *self.ranges.values(), *self.arrays.values()]
        if any(not -2**31 <= x < 2**31 for r in bounds for x in (r[0], r[1], r[1] - r[0] + 1)):
            raise Unsupported(f"{self.spec.path}: a value range beyond 32-bit immediates (registers hold "
                              f"{self.hull[0]}..{self.hull[1]}); the generator compares and wraps with imm32")
        handlers = {h.segment.name: h for h in self.spec.handlers.values() if h.segment is not None}
        segv = self.spec.handlers.get("SIGSEGV")
        for seg in segs:
            used: dict[str, str] = {}
            for ins in seg.instrs:
                for a in data.operands(ins):
                    if is_reg(a):
                        used[self.machine(a, ins)] = a
                    if a == "rseq.mm_cid":
                        raise Unsupported(f"{self._at(ins)}: rseq.mm_cid is not generated yet (no run here has "
                                          "compared the kernel's ids with the model's)")
                    m = MEM.match(a) if isinstance(a, str) else None
                    if m and m.group(3) and is_reg(m.group(3)) and segv is not None and segv.action == "handler":
                        raise Unsupported(f"{self._at(ins)}: an index outside the array kills with SIGSEGV in the "
                                          "model, but this spec catches SIGSEGV: the kernel would run the handler")
                    if m and m.group(4) and any(i.op in ("rseq_register", "rseq_unregister") and i.args[0] != "tls"
                                                for s in segs for i in s.instrs):
                        raise Unsupported(f"{self._at(ins)}: rseq fields with an own rseq area: the generator reads "
                                          "glibc's")
            for ins in seg.instrs:
                hit = sorted(clobbers(ins) & set(used))
                if hit:
                    raise Unsupported(f"{self._at(ins)}: clobbers {', '.join(hit)}, which holds "
                                      f"{', '.join(used[h] for h in hit)} in this block")
            if seg.name in handlers:
                live = self.live_at_entry(seg, self.spec)
                if live:
                    raise Unsupported(f"{self.spec.path}:{seg.instrs[0].line}: handler {handlers[seg.name].sig} reads "
                                      f"{', '.join(sorted(live, key=lambda r: int(r[2:])))} before writing it: the "
                                      "interrupted context's value, which may come from the runner's C code here")

    @staticmethod
    def live_at_entry(seg: Segment, spec: Spec) -> set[str]:
        """Registers some path from the block's start reads before writing
        (model/data.py:liveness)."""
        sections = [(seg.labels[c.start], seg.labels[c.post_commit], seg.labels[c.abort]) for c in spec.cs.values()
                    if all(lab in seg.labels for lab in (c.start, c.post_commit, c.abort))]
        live_in, _ = data.liveness(seg, sections)
        return live_in[0] if seg.instrs else set()

    # ------------------------------------------------------------ layout

    def slot_off(self, name: str) -> int:
        return self.gen.off[name]

    def loc(self, text: str, ins: Instr) -> Loc:
        m = MEM.match(text)
        assert m is not None, text
        if m.group(4):
            f = m.group(4)
            return Loc([], f"{FIELD_OFF[f]}(%r13)", 4, *self.hull, shared=False)
        name, idx = (m.group(1) or "") + m.group(2), m.group(3)
        if idx is None:
            lo, hi = self.ranges.get(name, self.spec.variables.get(name, self.hull))
            return Loc([], self.gen.slot(name), 8, lo, hi, shared=not name.startswith("tls."))
        lo, hi = self.arrays[name]
        base = self.slot_off(f"{name}[0]")
        if not is_reg(idx):
            return Loc([], f"{base + 8 * int(idx)}(%r12)", 8, lo, hi, shared=True)
        r = self.machine(idx, ins)
        # an index outside 0..cpus-1 faults, as the model's (unsigned compare: negatives too)
        pre = [f"cmpq ${self.ncpu}, {r}", "jb 6f", "movq 0, %rax", "6:"]
        return Loc(pre, f"{base}(%r12,{r},8)", 8, lo, hi, shared=True)

    def src(self, x: int | str, ins: Instr) -> tuple[str, int, int]:
        """A source operand as an asm operand, with its range."""
        if isinstance(x, int):
            return _imm(x), x, x
        return self.machine(x, ins), *self.hull

    # ------------------------------------------------------------ emit

    def thread_prologue(self, seg: Segment) -> list[str]:
        """The model's registers start at 0."""
        regs = sorted({self.machine(a, ins) for ins in seg.instrs for a in data.operands(ins) if is_reg(a)})
        return [f"xorl {r}d, {r}d" if r[2:].isdigit() else f"xorl %e{r[2:]}, %e{r[2:]}" for r in regs]

    def instr(self, seg: Segment, ins: Instr) -> list[str] | None:
        """The machine code of a data instruction (or of a v0 store/add/beq/bne
        in a spec with data); None for everything else."""
        op, a = ins.op, ins.args
        if op not in data.V0_OPS + data.DATA_OPS:
            return None
        if op in ("beq", "bne") and (a[0] in SPECIAL or not isinstance(a[1], (int, str)) or
                                     (isinstance(a[1], str) and not is_reg(a[1]))):
            return None  # rseq_ret / rseq_size: cgen's own
        lo, hi = self.hull
        if op == "mov":
            d = self.machine(a[0], ins)
            if isinstance(a[1], int):
                return [f"movq ${wrap_int(a[1], lo, hi)}, {d}"]
            return [f"movq {self.machine(a[1], ins)}, {d}"]
        if op == "load":
            d = self.machine(a[0], ins)
            m = self.loc(a[1], ins)
            return m.pre + [m.load("%rax")] + wrap_asm("%rax", m.lo, m.hi, lo, hi) + [f"movq %rax, {d}"]
        if op == "store":
            m = self.loc(a[0], ins)
            s, slo, shi = self.src(a[1], ins)
            if isinstance(a[1], int):
                val = [f"movq ${wrap_int(a[1], m.lo, m.hi)}, %rax"]
            else:
                val = [f"movq {s}, %rax"] + wrap_asm("%rax", slo, shi, m.lo, m.hi)
            if m.width == 4:
                put = "movl %eax, " + m.addr
            elif m.shared:
                put = f"xchgq %rax, {m.addr}"  # one instruction, and a full fence
            else:
                put = f"movq %rax, {m.addr}"
            return m.pre + val + [put]
        if op in ("add", "sub"):
            s, slo, shi = self.src(a[1], ins)
            asm_op = "addq" if op == "add" else "subq"
            if is_reg(a[0]):
                d = self.machine(a[0], ins)
                elo, ehi = (lo + slo, hi + shi) if op == "add" else (lo - shi, hi - slo)
                return [f"movq {d}, %rax", f"{asm_op} {s}, %rax"] + wrap_asm("%rax", elo, ehi, lo, hi) + \
                    [f"movq %rax, {d}"]
            m = self.loc(a[0], ins)
            elo, ehi = (m.lo + slo, m.hi + shi) if op == "add" else (m.lo - shi, m.hi - slo)
            cx = "lock cmpxchgq %rcx, " if m.width == 8 else "lock cmpxchgl %ecx, "
            # reload, compute, and store only if nobody wrote it meanwhile
            return m.pre + [f"5: {m.load('%rax')}", "movq %rax, %rcx", f"{asm_op} {s}, %rcx",
                            *wrap_asm("%rcx", elo, ehi, m.lo, m.hi), cx + m.addr, "jne 5b"]
        if op in BRANCHES:
            target = self.gen.sym(seg, a[2])
            s, _, _ = self.src(a[1], ins)
            if is_reg(a[0]):
                return [f"cmpq {s}, {self.machine(a[0], ins)}", f"{SIGNED_JCC[op]} {target}"]
            m = self.loc(a[0], ins)
            return m.pre + [m.load("%rax"), f"cmpq {s}, %rax", f"{SIGNED_JCC[op]} {target}"]
        raise AssertionError(op)

    # ------------------------------------------------------------ placement

    def placement(self) -> tuple[list[int], int]:
        """Per thread the CPU it starts pinned to (the model's placement:
        `cpu`, default 0), and with migration the number of CPUs it is then
        let free on (the spec's `cpus`), else 0: it stays pinned."""
        return [t.cpu or 0 for t in self.spec.threads], (self.ncpu if self.migrates else 0)
