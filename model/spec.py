"""Loading and validating a spec (TOML, format v0 of DESIGN.md).

Every error names the file and the line it comes from.  tomllib gives no
positions, so a light line scanner maps each table and key to its line.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from rseqcheck.model import files, names
from rseqcheck.model import signals as sigs
from rseqcheck.model.errors import SpecError
from rseqcheck.model.program import BRANCHES, ERRNOS, AExpr, Segment, parse_code, parse_expr
from rseqcheck.model.properties import PROPERTIES
from rseqcheck.model.rules import ALIASES, PRESETS, RULES
from rseqcheck.model.syscalls import SYSCALLS

SECCOMP_ACTIONS = ("allow", "errno", "trap", "kill")
SECCOMP_EXTRA = ("rt_sigreturn", "exit", "rseq", "prctl", "clone", "execve", "sched_setaffinity")  # membarrier is a `syscall` name too  # names of the non-`syscall` instructions
CS_FLAGS = ("NO_RESTART_ON_PREEMPT", "NO_RESTART_ON_SIGNAL", "NO_RESTART_ON_MIGRATE")
SA_FLAGS = ("SA_RESTART", "SA_NODEFER")


@dataclass
class CsDesc:
    name: str
    start: str
    post_commit: str
    abort: str
    flags: tuple[str, ...]
    signature_ok: bool
    version: int
    line: int


@dataclass
class Handler:
    sig: str
    action: str  # "handler" | "ignore" | "default"
    flags: tuple[str, ...]
    mask: tuple[str, ...]
    segment: Segment | None
    line: int


@dataclass
class ThreadSpec:
    name: str
    segment: Segment
    rseq_flags: tuple[str, ...]
    line: int
    ptrace_step: bool = False  # a tracer single-steps this thread (PTRACE_SINGLESTEP throughout)
    ptrace_syscall: bool = False  # a tracer stops it at every syscall entry and exit (PTRACE_SYSCALL)
    seccomp: dict[str, str] = field(default_factory=dict)  # syscall -> SECCOMP_RET_* action
    cpu: int | None = None  # the CPU it starts on ([thread.T] cpu; 0 when not given)
    area: str | None = None  # [thread.T] rseq_area: an rseq area (TLS block) shared in sequence
    area_line: int = 0


@dataclass
class Environment:
    signals: tuple[str, ...] = ()
    max_signals: int = 0
    max_nesting: int = 2
    cpus: int = 2
    preemption: bool = False
    migration: bool = False
    notify_resume: bool = False
    max_notify_signals: int = 0  # task_work_add(TWA_SIGNAL) per thread (io_uring): TIF_NOTIFY_SIGNAL
    glibc_rseq: bool = True  # glibc registered every thread at start (tunable glibc.pthread.rseq)


@dataclass
class OutcomeCheck:
    """[outcomes]: exists/forall EXPR over the final user variables and `end`
    (checked by checker/outcomes.py)."""

    kind: str  # "exists" | "forall"
    text: str
    expr: AExpr
    line: int
    expect: str = "holds"  # "holds" | "fails": the condition's expected answer (herd7's Ok / No)


@dataclass
class UserProp:
    """A property over user variables written in [check] properties:
    `always EXPR` (an invariant), `eventually EXPR` (every fair run reaches
    it), `sometimes EXPR` (some reachable state satisfies it)."""

    kind: str  # "always" | "eventually" | "sometimes"
    text: str  # the expression as written
    expr: AExpr
    line: int


@dataclass
class FairnessSpec:
    """[fairness]: what a liveness verdict assumes (docs/spec-format.md)."""

    threads: str = "weak"  # "weak" | "strong" | "none": each thread's user steps, and its kernel steps
    environment: bool = False  # weak fairness of each environment event too


POLARITIES = ("always", "eventually", "sometimes")


@dataclass
class Spec:
    path: str
    text: str
    title: str
    source: str
    preset: str
    expect: str | None
    rules: dict[str, str]  # overrides as written (canonical names)
    env: Environment
    threads: list[ThreadSpec]
    handlers: dict[str, Handler]
    cs: dict[str, CsDesc]
    properties: tuple[str, ...]
    depth: int
    lines: dict[tuple, int] = field(default_factory=dict)
    variables: dict[str, tuple[int, int]] = field(default_factory=dict)  # declared ranges
    arrays: dict[str, tuple[int, int]] = field(default_factory=dict)  # per-CPU arrays: "NAME[cpu]" = [MIN, MAX]
    outcomes: OutcomeCheck | None = None  # [outcomes]
    user_props: dict[str, UserProp] = field(default_factory=dict)  # "eventually x == 1" -> its parts
    fairness: FairnessSpec = field(default_factory=FairnessSpec)

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


# ------------------------------------------------------------- line locator

_HDR = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
# A key, possibly dotted, with parts bare, "basic" or 'literal'.
_PART = r"""(?:"(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_path(p: str) -> tuple[str, ...]:
    out = []
    for m in re.finditer(r"""\"((?:[^"\\]|\\.)*)"|'([^']*)'|([^.'"\s]+)""", p):
        part = next(g for g in m.groups() if g is not None)
        if m.group(1) is not None and "\\" in part:  # escapes in a "basic" key: the key tomllib sees
            try:
                part = tomllib.loads(f'k = "{part}"')["k"]
            except tomllib.TOMLDecodeError:
                pass
        out.append(part)
    return tuple(out)


def locate(text: str) -> tuple[dict[tuple, int], dict[tuple, int]]:
    """(key path -> line of `key =`, code key path -> line of its first
    content line)."""
    lines: dict[tuple, int] = {}
    code_first: dict[tuple, int] = {}
    table: tuple[str, ...] = ()
    in_ml = None
    for no, raw in enumerate(text.split("\n"), start=1):
        if in_ml:
            if in_ml in raw:
                in_ml = None
            continue
        m = _HDR.match(raw)
        if m:
            table = _split_path(m.group(1))
            lines.setdefault(table, no)
            continue
        m = _KEY.match(raw)
        if m:
            path = table + _split_path(m.group(1))
            # a dotted key also defines its parent tables here
            for k in range(len(table) + 1, len(path) + 1):
                lines.setdefault(path[:k], no)
            rest = raw[m.end() :].strip()
            for q in ('"""', "'''"):
                if rest.startswith(q):
                    after = rest[3:]
                    code_first[path] = no + 1 if after.strip() == "" else no
                    if q not in after:
                        in_ml = q
                    break
    return lines, code_first


# ------------------------------------------------------------------ loading


def load_spec(path: str | Path) -> Spec:
    p = Path(path)
    file = str(path)
    try:
        raw = files.read_regular(p, files.MAX_SPEC_BYTES)  # not a FIFO or /dev/zero, at most 1 MiB
    except files.InputError as e:
        raise SpecError(file, None, e.strerror) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SpecError(file, line, "not UTF-8 text (TOML files are UTF-8)") from None
    return loads_spec(text, file)


def loads_spec(text: str, file: str = "<string>") -> Spec:
    """A spec from its TOML text; `file` names it in messages (and where
    relative paths in it would be resolved)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise toml_error(file, text, e) from None
    lines, code_first = locate(text)
    return _build(file, text, data, lines, code_first)


def toml_error(file: str, text: str, e: tomllib.TOMLDecodeError) -> SpecError:
    """A TOML syntax error as `file:line: TOML error: ...` (also used for
    other TOML inputs, such as a sweep matrix)."""
    msg = str(e)
    m = re.search(r"\(at line (\d+), column \d+\)", msg)
    if getattr(e, "lineno", None):  # Python >= 3.14 says where directly
        line = int(e.lineno)
    elif m:
        line = int(m.group(1))
    else:  # "(at end of document)": the last line
        line = max(1, len(text.rstrip("\n").split("\n")))
    msg = re.sub(r"\s*\((at line \d+, column \d+|at end of document)\)", "", msg)
    return SpecError(file, line, f"TOML error: {msg}")


def _build(file: str, text: str, data: dict, lines: dict, code_first: dict) -> Spec:
    def at(*path: str) -> int:
        for k in range(len(path), 0, -1):
            if path[:k] in lines:
                return lines[path[:k]]
        return 1  # nothing of it is written in the file: point at its start

    def err(path: tuple, msg: str) -> SpecError:
        return SpecError(file, at(*path), msg)

    def table(name: str, required: bool = False) -> dict:
        v = data.get(name, {})
        if not isinstance(v, dict):
            raise err((name,), f"[{name}] must be a table")
        if required and name not in data:
            shown = "thread.NAME" if name == "thread" else name
            raise SpecError(file, 1, f"missing section [{shown}]")
        return v

    def check_keys(d: dict, allowed: set[str], where: tuple) -> None:
        for k in d:
            if k not in allowed:
                raise err(where + (k,), f"unknown key {k!r} in [{'.'.join(where)}] (known: {', '.join(sorted(allowed))})")

    def typed(d: dict, key: str, typ, where: tuple, default=None):
        if key not in d:
            return default
        v = d[key]
        if typ is int and isinstance(v, bool):
            raise err(where + (key,), f"{key} must be an integer")
        if not isinstance(v, typ):
            tname = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}[typ]
            raise err(where + (key,), f"{key} must be {tname}")
        return v

    def str_list(d: dict, key: str, where: tuple) -> tuple[str, ...]:
        v = typed(d, key, list, where, [])
        for x in v:
            if not isinstance(x, str):
                raise err(where + (key,), f"{key} must be a list of strings")
        return tuple(v)

    known_sections = {"spec", "rules", "environment", "thread", "rseq_cs", "handler", "check", "variables", "outcomes",
                      "fairness"}
    for k in data:
        if k not in known_sections:
            raise err((k,), f"unknown section [{k}] (known: {', '.join(sorted(known_sections))})")

    sp = table("spec", required=True)
    check_keys(sp, {"title", "source", "preset", "expect", "description"}, ("spec",))
    title = typed(sp, "title", str, ("spec",), "")
    source = typed(sp, "source", str, ("spec",), "")
    for key, val in (("title", title), ("source", source), ("description", typed(sp, "description", str, ("spec",), ""))):
        names.check_text(key, val, file, at("spec", key), names.TEXT_LIMITS[key], multiline=key == "description")
    preset = typed(sp, "preset", str, ("spec",))
    if preset is None:
        raise err(("spec",), "[spec] needs a preset, e.g. preset = \"linux-6.18\"")
    if preset not in PRESETS:
        raise err(("spec", "preset"), f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    expect = typed(sp, "expect", str, ("spec",))
    if expect is not None and expect not in ("holds", "violation"):
        raise err(("spec", "expect"), f"expect must be \"holds\" or \"violation\", not {expect!r}")

    rules: dict[str, str] = {}
    for k, v in table("rules").items():
        name = ALIASES.get(k, k)
        if isinstance(v, dict):  # rseq.debug = ... unquoted is a nested table in TOML
            raise err(("rules", k), f"rule names contain dots: quote them, e.g. \"{k}.{next(iter(v), '...')}\" = ...")
        if name not in RULES:
            raise err(("rules", k), f"unknown rule {k!r} (see `rseqcheck rules`)")
        if not isinstance(v, str) or v not in RULES[name].choices:
            raise err(("rules", k), f"rule {k} has no choice {v!r} (choices: {', '.join(RULES[name].choices)})")
        if name in rules:
            raise err(("rules", k), f"rule {name} set twice (once through an alias)")
        rules[name] = v

    e = table("environment")
    check_keys(e, {"signals", "max_signals", "max_nesting", "cpus", "preemption", "migration", "notify_resume", "max_notify_signals", "glibc_rseq"}, ("environment",))
    env = Environment(
        signals=str_list(e, "signals", ("environment",)),
        max_signals=typed(e, "max_signals", int, ("environment",), 0),
        max_nesting=typed(e, "max_nesting", int, ("environment",), 2),
        cpus=typed(e, "cpus", int, ("environment",), 2),
        preemption=typed(e, "preemption", bool, ("environment",), False),
        migration=typed(e, "migration", bool, ("environment",), False),
        notify_resume=typed(e, "notify_resume", bool, ("environment",), False),
        max_notify_signals=typed(e, "max_notify_signals", int, ("environment",), 0),
        glibc_rseq=typed(e, "glibc_rseq", bool, ("environment",), True),
    )
    for s in env.signals:
        if s not in sigs.SIGNUM:
            raise err(("environment", "signals"), f"unknown signal {s!r}")
        if s in ("SIGKILL",):
            raise err(("environment", "signals"), f"{s} is not modelled (it ends the process outright)")
    if len(set(env.signals)) != len(env.signals):
        raise err(("environment", "signals"), "a signal is listed twice")
    for key, lo, hi in (("max_signals", 0, 15), ("max_notify_signals", 0, 15), ("max_nesting", 0, 4), ("cpus", 1, 64)):
        v = getattr(env, key)
        if not lo <= v <= hi:
            raise err(("environment", key), f"{key} = {v} is out of range {lo}..{hi}")
    if env.migration and env.cpus < 2:
        raise err(("environment", "migration"), "migration needs cpus >= 2")

    threads: list[ThreadSpec] = []
    th = table("thread", required=True)
    if not th:
        raise SpecError(file, at("thread"), "no [thread.NAME] section")
    for name, t in th.items():
        where = ("thread", name)
        if not isinstance(t, dict):
            raise err(where, f"[thread.{name}] must be a table")
        if not re.match(r"[A-Za-z_][A-Za-z0-9_]*$", name):
            raise err(where, f"thread name {name!r} is not an identifier")
        check_keys(t, {"code", "rseq_flags", "ptrace", "seccomp", "cpu", "rseq_area"}, where)
        area = typed(t, "rseq_area", str, where)
        if area is not None and not re.match(r"[A-Za-z_][A-Za-z0-9_]{0,63}$", area):
            raise err(where + ("rseq_area",), f"rseq_area {area!r} is not an identifier")
        cpu = typed(t, "cpu", int, where)
        if cpu is not None and not 0 <= cpu < env.cpus:
            raise err(where + ("cpu",), f"cpu = {cpu} is out of range 0..{env.cpus - 1} ([environment] cpus = {env.cpus})")
        ptrace = typed(t, "ptrace", str, where, "none")
        if ptrace not in ("none", "singlestep", "syscall"):
            raise err(where + ("ptrace",), "ptrace must be \"none\", \"singlestep\" or \"syscall\"")
        seccomp = t.get("seccomp", {})
        if not isinstance(seccomp, dict):
            raise err(where + ("seccomp",), "seccomp must be a table: { getpid = \"errno\", ... }")
        for sc, act in seccomp.items():
            if sc not in SYSCALLS and sc not in SECCOMP_EXTRA:
                raise err(where + ("seccomp",), f"seccomp: unknown syscall {sc!r}")
            if isinstance(act, str) and act.startswith("errno:") and act[6:] in ERRNOS:
                continue  # SECCOMP_RET_ERRNO with that errno ("errno" alone: EPERM)
            if act not in SECCOMP_ACTIONS:
                raise err(where + ("seccomp",), f"seccomp: {sc} = {act!r}; actions: {', '.join(SECCOMP_ACTIONS)}, "
                          f"errno:NAME ({', '.join(ERRNOS)})")
        code = typed(t, "code", str, where)
        if code is None:
            raise err(where, f"[thread.{name}] needs code")
        seg = parse_code(code, name, "thread", file, code_first.get(where + ("code",), at(*where, "code")))
        fl = str_list(t, "rseq_flags", where)
        for f in fl:
            if f not in CS_FLAGS:
                raise err(where + ("rseq_flags",), f"unknown flag {f!r} (known: {', '.join(CS_FLAGS)})")
        threads.append(ThreadSpec(name, seg, fl, at(*where), ptrace == "singlestep", ptrace == "syscall", dict(seccomp), cpu,
                                  area, at(*where, "rseq_area") if area is not None else 0))

    handlers: dict[str, Handler] = {}
    for sig, h in table("handler").items():
        where = ("handler", sig)
        if not isinstance(h, dict):
            raise err(where, f"[handler.{sig}] must be a table")
        if sig not in sigs.SIGNUM:
            raise err(where, f"unknown signal {sig!r}")
        check_keys(h, {"code", "flags", "mask", "action"}, where)
        action = typed(h, "action", str, where, "handler")
        if action not in ("handler", "ignore", "default"):
            raise err(where + ("action",), "action must be \"handler\", \"ignore\" or \"default\"")
        fl = str_list(h, "flags", where)
        for f in fl:
            if f not in SA_FLAGS:
                raise err(where + ("flags",), f"unknown flag {f!r} (known: {', '.join(SA_FLAGS)})")
        mask = str_list(h, "mask", where)
        for m in mask:
            if m not in sigs.SIGNUM:
                raise err(where + ("mask",), f"unknown signal {m!r}")
        code = typed(h, "code", str, where)
        seg = None
        if action == "handler":
            if code is None:
                raise err(where, f"[handler.{sig}] needs code (or action = \"ignore\"/\"default\")")
            if sig in ("SIGSTOP", "SIGKILL"):
                raise err(where, f"{sig} cannot be caught")
            seg = parse_code(code, f"handler {sig}", "handler", file, code_first.get(where + ("code",), at(*where, "code")))
        elif code is not None:
            raise err(where + ("code",), f"code given but action = {action!r}")
        handlers[sig] = Handler(sig, action, fl, mask, seg, at(*where))

    cs: dict[str, CsDesc] = {}
    for name, c in table("rseq_cs").items():
        where = ("rseq_cs", name)
        if not isinstance(c, dict):
            raise err(where, f"[rseq_cs.{name}] must be a table")
        check_keys(c, {"start", "post_commit", "abort", "flags", "signature", "version"}, where)
        vals = {}
        for k in ("start", "post_commit", "abort"):
            v = typed(c, k, str, where)
            if v is None:
                raise err(where, f"[rseq_cs.{name}] needs {k}")
            vals[k] = v
        fl = str_list(c, "flags", where)
        for f in fl:
            if f not in CS_FLAGS:
                raise err(where + ("flags",), f"unknown flag {f!r} (known: {', '.join(CS_FLAGS)})")
        sig = typed(c, "signature", str, where, "RSEQ_SIG")
        if sig not in ("RSEQ_SIG", "other"):
            raise err(where + ("signature",), "signature must be \"RSEQ_SIG\" or \"other\"")
        version = typed(c, "version", int, where, 0)
        cs[name] = CsDesc(name, vals["start"], vals["post_commit"], vals["abort"], fl, sig == "RSEQ_SIG", version, at(*where))

    variables: dict[str, tuple[int, int]] = {}
    declared = dict(table("variables"))
    if isinstance(declared.get("tls"), dict):  # tls.x = [...] written as a dotted key
        for k, v in declared.pop("tls").items():
            declared[f"tls.{k}"] = v
    arrays: dict[str, tuple[int, int]] = {}
    for name, rng in declared.items():
        per_cpu = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\[cpu\]$", name)
        if not per_cpu and not re.match(r"(tls\.)?[A-Za-z_][A-Za-z0-9_]*$", name):
            raise err(("variables", name), f"variable name {name!r} is not an identifier (tls.NAME for a per-thread "
                      "one, NAME[cpu] for a per-CPU array)")
        if name in ("rseq_ret", "rseq_size", "ret"):
            raise err(("variables", name), f"{name!r} is reserved (the result of rseq(), glibc's __rseq_size, "
                      "a syscall's result)")
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in rng)
                and rng[0] <= 0 <= rng[1]):
            raise err(("variables", name), f"{name} must be [MIN, MAX] with MIN <= 0 <= MAX (variables start at 0)")
        if per_cpu:
            arrays[per_cpu.group(1)] = (rng[0], rng[1])
        else:
            variables[name] = (rng[0], rng[1])
    for a in arrays:
        if a in variables:
            raise err(("variables", f"{a}[cpu]"), f"{a} is declared both as a variable and as a per-CPU array")

    ck = table("check", required=True)
    check_keys(ck, {"properties", "depth"}, ("check",))
    written = str_list(ck, "properties", ("check",))
    segs = [t.segment for t in threads] + [h.segment for h in handlers.values() if h.segment]
    if not written and not any(ins.op == "assert" for seg in segs for ins in seg.instrs):
        raise err(("check", "properties"), "[check] needs at least one property (or an assert in a program)")
    props_l: list[str] = []
    user_props: dict[str, UserProp] = {}
    for pname in written:
        word, _, rest = pname.strip().partition(" ")
        rest = rest.strip()
        if word in POLARITIES and rest in PROPERTIES and PROPERTIES[rest].kind == "always" and word == "always":
            pname = rest  # `always NAME` is the built-in invariant NAME
        elif word in POLARITIES and rest:
            if rest in PROPERTIES:
                raise err(("check", "properties"), f"{pname!r}: {rest} is a built-in property; write it alone "
                          "(a polarity word goes before an expression over user variables)")
            line = at("check", "properties")
            expr = parse_expr(rest, file, line)
            pname = f"{word} {' '.join(rest.split())}"
            user_props[pname] = UserProp(word, rest, expr, line)
        elif pname not in PROPERTIES:
            raise err(("check", "properties"), f"unknown property {pname!r} (see `rseqcheck properties`; "
                      "or always|eventually|sometimes EXPR)")
        if pname in props_l:
            raise err(("check", "properties"), f"property {pname!r} is listed twice")
        props_l.append(pname)
    props = tuple(props_l)
    depth = typed(ck, "depth", int, ("check",), 50)
    if not 1 <= depth <= 100000:
        raise err(("check", "depth"), f"depth = {depth} is out of range 1..100000")

    spec = Spec(file, text, title, source, preset, expect, rules, env, threads, handlers, cs, props, depth, lines, variables,
                arrays=arrays)
    spec.outcomes = _outcome_check(file, table("outcomes"), at)
    spec.user_props = user_props
    spec.fairness = _fairness(table("fairness"), err, typed, check_keys)
    names.check_spec_names(spec)  # every name, bounded and \Z-anchored (the patterns above accept a final newline)
    _check_code(spec)
    return spec


def _check_code(spec: Spec) -> None:
    """Static checks on the programs: labels, descriptors, syscalls."""
    segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
    for seg in segs:
        for ins in seg.instrs:
            target = ins.args[0] if ins.op == "jmp" else ins.args[2] if ins.op in BRANCHES else None
            if target is not None and target not in seg.labels:
                raise SpecError(spec.path, ins.line, f"unknown label {target!r} in {seg.name}")
            if ins.op == "jmp" and ins.args[0] not in seg.labels:
                raise SpecError(spec.path, ins.line, f"unknown label {ins.args[0]!r} in {seg.name}")
            if ins.op == "rseq_cs" and ins.args[0] != "0" and ins.args[0] not in spec.cs:
                raise SpecError(spec.path, ins.line, f"unknown rseq_cs descriptor {ins.args[0]!r}")
            if ins.op == "syscall" and ins.args[0] not in SYSCALLS:
                raise SpecError(
                    spec.path, ins.line, f"unknown syscall {ins.args[0]!r} (known: {', '.join(sorted(SYSCALLS))})"
                )
    for c in spec.cs.values():
        homes = [s for s in segs if all(lab in s.labels for lab in (c.start, c.post_commit, c.abort))]
        if not homes:
            for key, lab in (("start", c.start), ("post_commit", c.post_commit), ("abort", c.abort)):
                if not any(lab in s.labels for s in segs):
                    line = spec.lines.get(("rseq_cs", c.name, key), c.line)
                    raise SpecError(spec.path, line, f"rseq_cs {c.name}: unknown label {lab!r}")
            raise SpecError(spec.path, c.line, f"rseq_cs {c.name}: start, post_commit and abort must be labels of one code block")
        for s in homes:
            st, pc = s.labels[c.start], s.labels[c.post_commit]
            if pc <= st:
                raise SpecError(spec.path, c.line, f"rseq_cs {c.name}: post_commit must come after start in {s.name}")
    if spec.env.max_signals and not spec.env.signals:
        raise SpecError(spec.path, spec.lines.get(("environment", "max_signals")), "max_signals > 0 but no signals listed")


def _fairness(t: dict, err, typed, check_keys) -> FairnessSpec:
    """[fairness] threads = "weak"|"strong"|"none", environment = true|false."""
    check_keys(t, {"threads", "environment"}, ("fairness",))
    threads = typed(t, "threads", str, ("fairness",), "weak")
    if threads not in ("weak", "strong", "none"):
        raise err(("fairness", "threads"), f"threads must be \"weak\", \"strong\" or \"none\", not {threads!r}")
    return FairnessSpec(threads, typed(t, "environment", bool, ("fairness",), False))


def _outcome_check(file: str, t: dict, at) -> OutcomeCheck | None:
    """[outcomes] exists = "EXPR" | forall = "EXPR" (one of them): a condition
    over the final values of user variables and `end` (exit, stuck, or the
    signal that killed the process: `end == SIGSEGV`); `expect = "fails"`
    when the spec expects the condition not to hold (default "holds")."""
    keys = [k for k in t if k in ("exists", "forall")]
    for k in t:
        if k not in ("exists", "forall", "expect"):
            raise SpecError(file, at("outcomes", k), f"unknown key {k!r} in [outcomes] (known: exists, forall, expect)")
    expect = t.get("expect", "holds")
    if expect not in ("holds", "fails"):
        raise SpecError(file, at("outcomes", "expect"), f"[outcomes] expect must be \"holds\" or \"fails\", not {expect!r}")
    if len(keys) != 1:
        if not keys and "expect" not in t:
            return None
        raise SpecError(file, at("outcomes"), "[outcomes] takes one of exists or forall")
    k = keys[0]
    if not isinstance(t[k], str):
        raise SpecError(file, at("outcomes", k), f"{k} must be a string, e.g. \"end == exit && x == 1\"")
    line = at("outcomes", k)
    return OutcomeCheck(k, t[k], parse_expr(t[k], file, line), line, expect)
