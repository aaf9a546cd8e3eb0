"""Escaping for everything rseqcheck writes that another program parses.

Names are validated at load (model/names.py), so none of these should ever
have to change a bundled spec's output; they are the second wall, for a
name that slipped past the first or a hostile trace that `show` renders.

* c_string: the one function through which checker/conformance/cgen.py emits a string
  into the generated C.  Everything but printable ASCII becomes a three-digit
  octal escape (so a following digit cannot extend it); `\\`, `"` and `?`
  (trigraphs: `??/` is a backslash under -trigraphs / -std=c89) are escaped
  too.  The literal therefore holds exactly the UTF-8 bytes of the input,
  NUL and newlines included, and cannot end early.
* c_ident: a name that becomes part of a C or assembler symbol must already
  be an identifier; anything else is a bug upstream (ValueError).
* dot_string: a Graphviz double-quoted string.
* xml_clean: XML 1.0 cannot carry most control characters at all, even
  escaped; ElementTree writes them raw, so they are replaced (U+FFFD).
* terminal: text for a terminal, with control characters shown as \\xNN
  instead of acted on (escape sequences, carriage returns).
"""

from __future__ import annotations

import re

_C_PLAIN = frozenset(chr(c) for c in range(0x20, 0x7F)) - {"\\", '"', "?"}
_C_NAMED = {"\n": "\\n", "\t": "\\t"}


def c_string(s: str) -> str:
    """A C string literal (with its quotes) whose bytes are s's UTF-8 bytes."""
    out = ['"']
    for ch in s:
        if ch in _C_PLAIN:
            out.append(ch)
        elif ch in '\\"?':
            out.append("\\" + ch)
        elif ch in _C_NAMED:
            out.append(_C_NAMED[ch])
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8", "surrogatepass"))
    out.append('"')
    return "".join(out)


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def c_ident(name: str) -> str:
    """`name` unchanged if it is a C identifier (part), else ValueError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"not an identifier: {name!r}")
    return name


def dot_string(s: str, newline: str = "\\l") -> str:
    """A DOT double-quoted string; a newline becomes `newline` (\\l: a
    left-justified line break), other control characters \\xNN text."""
    out = ['"']
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append(newline)
        elif not ch.isprintable():
            out.append(f"\\\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_clean(s: str) -> str:
    """s with the characters XML 1.0 forbids replaced by U+FFFD (apply to
    ElementTree's output: it never writes such characters itself)."""
    return _XML_BAD.sub("\ufffd", s)


def terminal(s: str, keep: str = "\n") -> str:
    """s with every non-printable character but those in `keep` shown as an
    escape (\\x1b, \\u202e) instead of sent to the terminal."""
    if all(c.isprintable() or c in keep for c in s):
        return s
    return "".join(c if c.isprintable() or c in keep else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in s)
