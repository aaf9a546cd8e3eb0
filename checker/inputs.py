"""What the command line accepts as input, checked before anything is built:
the spec files and folders of `verify`, the saved traces of `show` and
`replay`, and the spec a trace names.

* a folder is walked without following symbolic links to folders; a
  sub-folder that cannot be read is an error, not silently skipped;
* a path that does not resolve says why (no such file, a symbolic link
  loop, permission denied);
* a file name with a control character is refused (it would reach the
  terminal, JUnit and file names);
* a trace is JSON of bounded size and nesting whose fields have the types
  and printable text rseqcheck writes; anything else is "not an rseqcheck
  ITF trace", never a traceback;
* `replay` opens the spec a trace names only if it is a relative path to a
  `.toml` file inside the current folder: a trace from elsewhere cannot make
  it read (and echo parts of) /etc/passwd or ~/.ssh.
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from rseqcheck.model.files import MAX_TRACE_BYTES, InputError, read_regular
from rseqcheck.model.names import bad_char

# ------------------------------------------------------------------- specs


def _printable_path(p: str) -> bool:
    return bad_char(p) is None


def collect_specs(paths: tuple[str, ...], ext: str = ".toml", what: str = "spec files") -> tuple[list[str], str | None]:
    """(spec files, None) or ([], the one-line problem).  Files are taken as
    given; folders are walked for files ending in `ext` (sorted)."""
    out: list[str] = []
    for p in paths:
        if not _printable_path(p):
            return [], f"{p!r}: the path contains a control character"
        try:
            st = os.stat(p)
        except OSError as e:
            why = "a symbolic link loop" if e.errno == 40 else (e.strerror or str(e)).lower()
            if e.errno == 2:
                why = "no such file or folder"
            return [], f"{p}: {why}"
        if stat.S_ISDIR(st.st_mode):
            found, problem = _walk(p, ext)
            if problem:
                return [], problem
            out += found
        else:
            out.append(p)
    if not out:
        return [], f"no {what} (*{ext}) found in " + ", ".join(paths)
    return out, None


def _walk(top: str, ext: str) -> tuple[list[str], str | None]:
    found: list[str] = []
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=errors.append, followlinks=False):
        dirnames.sort()
        for name in filenames:
            if name.endswith(ext):
                full = str(Path(dirpath) / name)
                if not _printable_path(full):
                    return [], f"{full!r}: the file name contains a control character"
                found.append(full)
    if errors:
        e = errors[0]
        return [], f"{e.filename}: cannot read the folder: {e.strerror or e}"
    return sorted(found), None


# ---------------------------------------------------------- temporary files

_TMP = re.compile(r"^\..+?\.(?:(\d+)\.)?[a-z0-9_]{8}\.tmp\Z")  # .NAME.PID.XXXXXXXX.tmp (mkstemp)
STALE_AFTER = 3600.0  # seconds: a temporary file without a writer pid this old is left over


def remove_stale_tmp(folder: Path) -> list[str]:
    """Remove the temporary files that an earlier run killed while saving
    (SIGKILL, power loss) left in `folder`: those whose writer (the pid in
    the name) is gone, and old ones without a pid (written before it was
    recorded).  A run still writing keeps its own."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for ent in entries:
        m = _TMP.match(ent.name)
        if not m or not ent.is_file(follow_symlinks=False):
            continue
        pid = m.group(1)
        if pid is not None:
            if _alive(int(pid)):
                continue
        else:
            try:
                if now - ent.stat(follow_symlinks=False).st_mtime < STALE_AFTER:
                    continue
            except OSError:
                continue
        try:
            os.unlink(ent.path)
            removed.append(ent.path)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process: leave its files alone
    return True


# ------------------------------------------------------------------ traces

MAX_DEPTH = 20  # nesting of a trace's JSON (ours is 4 deep)
MAX_TEXT = 100_000  # characters of one string field


class TraceError(ValueError):
    """Not an rseqcheck ITF trace (message: why)."""


def read_trace_json(path: str | Path) -> Any:
    """The JSON value of a trace file: a regular file of at most 64 MiB,
    UTF-8, nested at most MAX_DEPTH deep.  InputError / TraceError."""
    raw = read_regular(path, MAX_TRACE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceError("not UTF-8 text") from None
    depth = _max_nesting(text)
    if depth > MAX_DEPTH:
        raise TraceError(f"JSON nested {depth} deep (a trace is at most {MAX_DEPTH})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise TraceError(f"not JSON ({e})") from None


def _max_nesting(text: str) -> int:
    """How deep [ and { nest, outside strings (a cheap bound before parsing)."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > MAX_DEPTH:
                    return best
        elif ch in "]}":
            depth -= 1
    return best


_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "tool": (str,), "version": (str,), "spec": (str,), "spec_hash": (str,), "title": (str,), "source": (str,),
    "preset": (str,), "rules": (dict,), "property": (str,), "property_doc": (str,), "engine": (str,),
    "shortest": (bool,), "bound": (int,), "rank": (int,), "distinct": (int,), "proposal": (dict,), "spec_sha256": (str,),
    "program": (list,), "addresses": (dict,), "legend": (dict,),
    "goal": (str,), "loop": (int,), "notes": (list,),  # a lasso (checker/engines/liveness.py)
}
_EDGE_KEYS = ("action", "actor", "kernel_fn", "rule", "proc")


def _text(v: Any, where: str) -> None:
    if not isinstance(v, str):
        raise TraceError(f"{where} must be a string, not {type(v).__name__}")
    if len(v) > MAX_TEXT:
        raise TraceError(f"{where} is {len(v):,} characters long")
    bad = bad_char(v, "\n")
    if bad:
        raise TraceError(f"{where} contains the control character U+{ord(bad[1]):04X}")


def check_itf(data: Any) -> None:
    """TraceError unless `data` has the shape and types of a trace rseqcheck
    writes (checker.trace.to_itf), every text printable."""
    if not isinstance(data, dict) or not isinstance(data.get("#meta"), dict):
        raise TraceError("no top-level #meta object")
    for k, v in data["#meta"].items():
        _text(k, "a #meta key")
        want = _HEADER_TYPES.get(k)
        if want is None:
            if not isinstance(v, (str, int, float, bool)) or v is None:
                raise TraceError(f"#meta {k} must be a string or a number")
            if isinstance(v, str):
                _text(v, f"#meta {k}")
            continue
        if not isinstance(v, want) or (int in want and isinstance(v, bool) and bool not in want):
            raise TraceError(f"#meta {k} must be {want[0].__name__}, not {type(v).__name__}")
        if isinstance(v, str):
            _text(v, f"#meta {k}")
        if k == "rules":
            for rk, rv in v.items():
                _text(rk, "a rule name")
                _text(rv, f"rule {rk}")
        if k == "program":  # [{"name": str, "lines": [[line, text], ...]}, ...]
            for block in v:
                if not isinstance(block, dict) or not isinstance(block.get("lines"), list):
                    raise TraceError("#meta program must be a list of {name, lines}")
                _text(block.get("name"), "a program block's name")
                for item in block["lines"]:
                    if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int):
                        raise TraceError("#meta program lines must be [line, text]")
                    _text(item[1], "a program line")
        if k in ("addresses", "legend"):
            for ak, av in v.items():
                _text(ak, f"a #meta {k} key")
                if k == "legend":
                    _text(av, f"#meta legend {ak}")
                elif type(av) is not int:
                    raise TraceError(f"#meta addresses {ak} must be a line number")
        if k == "proposal":  # {"preset": str | None, "rules": {name: choice}}; its meaning: checker.proposal
            if set(v) - {"preset", "rules"} or not isinstance(v.get("rules", {}), dict):
                raise TraceError("#meta proposal must be {preset, rules}")
            if v.get("preset") is not None:
                _text(v["preset"], "the proposal's preset")
            for rk, rv in v.get("rules", {}).items():
                _text(rk, "a rule name")
                _text(rv, f"rule {rk}")
        if k == "notes":
            for note in v:
                _text(note, "a note")
    names = data.get("vars")
    states = data.get("states")
    if not isinstance(names, list) or not isinstance(states, list) or not states:
        raise TraceError("needs a 'vars' list and a non-empty 'states' list")
    loop = data["#meta"].get("loop")
    if "loop" in data and data["loop"] != loop:
        raise TraceError("'loop' and #meta loop differ")
    if loop is not None and not 0 <= loop < len(states):
        raise TraceError(f"loop {loop} is not the index of a state")
    for n in names:
        _text(n, "a variable name")
    for i, st in enumerate(states):
        if not isinstance(st, dict):
            raise TraceError(f"state {i} is not an object")
        for k, v in st.items():
            if k == "#meta":
                continue
            _text(k, f"state {i}: a variable name")
            if isinstance(v, dict) and set(v) == {"#bigint"} and isinstance(v["#bigint"], str) \
                    and re.fullmatch(r"-?[0-9]{1,30}", v["#bigint"]):
                continue  # an ITF integer, as Apalache writes it
            if isinstance(v, str):
                _text(v, f"state {i}: {k}")
            elif not isinstance(v, (bool, int)):
                raise TraceError(f"state {i}: {k} must be a number, true/false or a name, not {type(v).__name__}")
        m = st.get("#meta")
        if i > 0:
            if not isinstance(m, dict):
                raise TraceError(f"state {i}: #meta lacks the action and actor that led to it")
            for k in _EDGE_KEYS:
                if k in m:
                    _text(m[k], f"state {i}: {k}")
            if "line" in m and type(m["line"]) is not int:
                raise TraceError(f"state {i}: line must be a number")


def spec_named_by_trace(trace: str, named: Any) -> str:
    """The spec path a trace names, if `replay` may open it: a relative path
    to a .toml file below the current folder.  TraceError otherwise."""
    _text(named, "its spec")
    p = Path(named)
    if p.is_absolute() or ".." in p.parts or p.suffix != ".toml":
        raise TraceError(f"its spec {named!r} is not a .toml file below this folder; "
                         "pass --spec PATH to replay it against a spec of your choice")
    try:
        inside = p.resolve().is_relative_to(Path.cwd().resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside:
        raise TraceError(f"its spec {named!r} leads outside this folder (a symbolic link); pass --spec PATH")
    return named


__all__ = ["InputError", "TraceError", "check_itf", "collect_specs", "read_trace_json", "remove_stale_tmp",
           "spec_named_by_trace"]
