"""An on-disk cache of generated engines (checker/engines/compile.py), so a re-run
of the same model does not generate and compile its Python again.

The key is a fingerprint of the IR `System` itself -- every variable's
range, every action's process, guard and assignments, the properties and
`terminal`, which is all the generated code depends on -- plus the engine
version: a hash of checker/engines/compile.py, of this file and of model/ir.py
(whose evaluator folds constants at generation), and the interpreter's
bytecode tag (marshal's format is per interpreter).  So the
spec, its preset and rules, and today's model/ code are all in the key
through the IR they produce; a change to any of them is a miss, never a
stale hit.

The value is marshal data (code objects, strings, lists of ints): written
to a temporary file in the cache folder, then renamed over the entry, so
concurrent writers and readers only ever see a whole entry.  A file that
cannot be read or decoded is a miss.

Folder: $RSEQCHECK_CACHE_DIR, else $XDG_CACHE_HOME/rseqcheck, else
~/.cache/rseqcheck; at most MAX_ENTRIES entries are kept, the least
recently used removed first, and the folder may be deleted at any time.
Entries are code that is run: the folder is made private (0700), and
one shared with other users must not be named.
RSEQCHECK_NO_CACHE=1 (what the CLI's --no-cache sets, for its
--jobs workers too) bypasses it.  Small models (fewer than MIN_ACTIONS
actions) are not cached: they compile in milliseconds."""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import rseqcheck.model.ir as ir_module
from rseqcheck.model.ir import Const, Expr, Op, Ref, System

MIN_ACTIONS = 150
MAX_ENTRIES = 256  # beyond this a store removes the least recently used entries
STATS: Counter[str] = Counter()  # "hit", "miss", "store", "error": what the cache did in this process
_version: str | None = None


def enabled() -> bool:
    return os.environ.get("RSEQCHECK_NO_CACHE", "") in ("", "0")


def cache_dir() -> Path:
    env = os.environ.get("RSEQCHECK_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "rseqcheck"


def engine_version() -> str:
    """What the cached code was made by: the generator's source, this
    file's, and the bytecode format."""
    global _version
    if _version is None:
        h = hashlib.blake2b(digest_size=16)
        here = Path(__file__).resolve().parent
        # the generator, this file, and the IR's evaluator (constants are folded at generation)
        for path in (here / "compile.py", here / "engine_cache.py", Path(ir_module.__file__)):
            h.update(path.read_bytes())
        h.update(f"{sys.implementation.cache_tag}/{marshal.version}".encode())
        _version = h.hexdigest()
    return _version


def fingerprint(system: System) -> str:
    """A hash of the system as the generator reads it.  Expressions are
    DAGs (a guard is shared by many actions): each node is hashed once and
    named by its number."""
    h = hashlib.blake2b(digest_size=20)
    vi = system.index()
    ids: dict[int, int] = {}
    out: list[str] = []

    def node(e: Expr) -> int:
        got = ids.get(id(e))
        if got is not None:
            return got
        if isinstance(e, Const):
            text = f"c{int(e.value)}"
        elif isinstance(e, Ref):
            text = f"r{vi[e.var]}"
        else:
            assert isinstance(e, Op), e
            text = e.op + "(" + ",".join(str(node(a)) for a in e.args) + ")"
        ids[id(e)] = n = len(out)
        out.append(text)
        return n

    for v in system.vars:
        out.append(f"V{v.type.lo},{v.type.hi}")
    for a in system.actions:
        g = node(a.guard)
        ups = ";".join(f"{vi[v]}={node(e)}" for v, e in a.updates)
        out.append(f"A{a.proc!r}|{g}|{ups}")
    for p in system.properties:
        out.append(f"P{node(p.holds)}")
    out.append(f"T{node(system.terminal)}")
    h.update("\n".join(out).encode())
    return h.hexdigest()


def key(system: System, kind: str) -> str | None:
    """The entry's name for this system and engine kind, or None when the
    cache is off or the system too small to be worth it."""
    if not enabled() or len(system.actions) < MIN_ACTIONS:
        return None
    return f"{kind}-{engine_version()[:16]}-{fingerprint(system)}"


def load(name: str) -> Any | None:
    path = cache_dir() / f"{name}.marshal"
    try:
        data = path.read_bytes()
    except OSError:
        STATS["miss"] += 1
        return None
    try:
        value = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        STATS["error"] += 1  # a damaged entry: regenerate (and overwrite it)
        return None
    STATS["hit"] += 1
    try:
        os.utime(path)  # recently used: the last to be pruned
    except OSError:
        pass
    return value


def store(name: str, value: Any) -> None:
    """Write-then-rename; a cache that cannot be written is no error."""
    folder = cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(value))
            os.replace(tmp, folder / f"{name}.marshal")
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        STATS["error"] += 1
        return
    STATS["store"] += 1
    _prune(folder)


def _prune(folder: Path) -> None:
    """Keep the MAX_ENTRIES most recently used entries, and no temporary
    file of a writer that died more than an hour ago."""
    now = time.time()
    entries: list[tuple[float, Path]] = []
    for p in folder.iterdir():
        try:
            mtime = p.stat().st_mtime
            if p.suffix == ".tmp" and now - mtime > 3600:
                p.unlink()
            elif p.suffix == ".marshal":
                entries.append((mtime, p))
        except OSError:
            continue  # another process removed it first
    entries.sort()
    for _, p in entries[:max(0, len(entries) - MAX_ENTRIES)]:
        try:
            p.unlink()
        except OSError:
            pass
