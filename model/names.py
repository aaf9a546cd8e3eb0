"""What a name in a spec may be, checked once at load.

Every name a spec chooses ends up somewhere else: in the generated C and
assembly of `rseqcheck run` (symbols such as `rsc_cs_NAME_T0`), in DOT,
GraphML, JUnit and JSON files, in terminal output and in file names.  So
each is validated at load as what it is:

* identifiers (threads, labels, descriptors, areas, tags, user variables):
  `[A-Za-z_][A-Za-z0-9_]*`, at most MAX_IDENT characters (`tls.NAME` for a
  per-thread variable).  The patterns end in `\\Z`, not `$`, which would
  also accept a trailing newline;
* free text (title, source, description): printable characters only
  (`str.isprintable`: no control characters, so no terminal escape codes, no
  NUL, no bidirectional overrides), any script and punctuation otherwise,
  and a bounded length; a description may span lines;
* code: printable lines (tabs allowed), so an instruction's text, which
  traces and the generated assembly quote, is as harmless as a title.

A name that fails is a SpecError at the line that holds it.
"""

from __future__ import annotations

import re

from rseqcheck.model.errors import SpecError

MAX_IDENT = 64
IDENT = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_IDENT - 1}}}\Z")
VARNAME = re.compile(rf"(?:tls\.)?[A-Za-z_][A-Za-z0-9_]{{0,{MAX_IDENT - 1}}}\Z")

# Free-text fields of [spec] and their longest accepted length (characters).
TEXT_LIMITS = {"title": 300, "source": 1000, "description": 10000}
MAX_CODE_LINE = 1000


def is_ident(s: object) -> bool:
    return isinstance(s, str) and IDENT.match(s) is not None


def _shown(s: str, n: int = 40) -> str:
    """A name as an error message may show it: repr (escapes every control
    character), cut to n characters."""
    return repr(s[:n]) + ("..." if len(s) > n else "")


def bad_char(s: str, allow: str = "") -> tuple[int, str] | None:
    """(index, char) of the first character that is not printable (and not in
    `allow`), or None."""
    for i, c in enumerate(s):
        if not c.isprintable() and c not in allow:
            return i, c
    return None


def check_ident(what: str, name: str, file: str, line: int | None, pattern: re.Pattern = IDENT) -> str:
    """`name` is an identifier, or SpecError "WHAT name '...' is not an identifier"."""
    if not isinstance(name, str) or not pattern.match(name):
        hint = f"letters, digits and _, not starting with a digit, at most {MAX_IDENT} characters"
        if pattern is VARNAME or pattern is DECLARED:
            hint += " (tls.NAME for a per-thread one)"
        raise SpecError(file, line, f"{what} name {_shown(str(name))} is not an identifier ({hint})")
    return name


def check_text(what: str, s: str, file: str, line: int | None, limit: int, multiline: bool = False) -> str:
    """`s` is printable free text of at most `limit` characters."""
    if len(s) > limit:
        raise SpecError(file, line, f"{what} is {len(s)} characters long (at most {limit})")
    bad = bad_char(s, "\n\t" if multiline else "")
    if bad:
        i, c = bad
        raise SpecError(file, line, f"{what} contains the control character U+{ord(c):04X} at position {i + 1} "
                        "(free text must be printable)")
    return s


# An instruction's name operand: an identifier or `tls.NAME`, and the data
# machine's operands (model/program.py: %rN, rseq.FIELD, ARRAY[%rN], ARRAY[N]).
_N = rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_IDENT - 1}}}"
OPERAND = re.compile(rf"(?:%r[0-9]{{1,2}}|rseq\.{_N}|(?:tls\.)?{_N}(?:\[(?:%r[0-9]{{1,2}}|[0-9]{{1,9}})\])?)\Z")
# A [variables] key: NAME, tls.NAME, or a per-CPU array NAME[cpu].
DECLARED = re.compile(rf"(?:(?:tls\.)?{_N}|{_N}\[cpu\])\Z")


def check_spec_names(spec) -> None:
    """Every name and code line of a loaded spec (model.spec.Spec): thread,
    descriptor and variable names (checked by spec.py with patterns that
    are unbounded and accept a final newline), the identifiers the parser
    found by pattern, re-checked for length, and each instruction's text,
    which traces and generated code quote."""
    f = spec.path
    for t in spec.threads:
        check_ident("thread", t.name, f, t.line)
    for c in spec.cs.values():
        check_ident("rseq_cs descriptor", c.name, f, c.line)
    for v in [*spec.variables, *(f"{a}[cpu]" for a in getattr(spec, "arrays", {}))]:
        check_ident("variable", v, f, spec.lines.get(("variables", v), spec.lines.get(("variables",))), DECLARED)
    segs = [t.segment for t in spec.threads] + [h.segment for h in spec.handlers.values() if h.segment]
    for seg in segs:
        for lab, idx in seg.labels.items():
            ins = seg.instrs[min(idx, len(seg.instrs) - 1)]
            check_ident("label", lab, f, ins.line)
        for ins in seg.instrs:
            if len(ins.text) > MAX_CODE_LINE:
                raise SpecError(f, ins.line, f"instruction is {len(ins.text)} characters long (at most {MAX_CODE_LINE})")
            bad = bad_char(ins.text, "\t")
            if bad:
                raise SpecError(f, ins.line, f"instruction contains the control character U+{ord(bad[1]):04X} "
                                "(code must be printable)")
            if ins.tag is not None:
                check_ident("tag", ins.tag, f, ins.line)
            for a in ins.args:
                # every name operand (labels, descriptors, areas, threads,
                # variables) is an identifier; numbers and `0` are not names
                if isinstance(a, str) and a and not a.lstrip("-").isdigit() and ins.op != "assert":
                    check_ident("operand", a, f, ins.line, OPERAND)
