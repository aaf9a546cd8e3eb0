"""Where each spec's counterexamples are saved under `--out`: laid out like
the spec folders, so that `verify specs/` saves the trace of
`specs/seed001/x.toml` as OUT/seed001/x.txt and OUT/seed001/x.json.

The folder is the spec's folder relative to the common root of the paths
given on the command line: a folder given counts as itself, a file given
as the folder it is in.  So one file lands at the top of OUT, one folder's
specs below it as they lie, and `verify a b` keeps a/ and b/ apart.  Two
specs can still claim one name (a/x.toml and a/x.spec; with numbered
counterexamples, x.toml's second and x.2.toml's first; a file where a
folder must go): the later one gets x-2, x-3 ..., and a warning says so,
rather than one run overwriting another spec's trace.

Only the spec's file and folder names make the path, never anything inside
the spec; the folder is a lexical sub-path of the root (no `..`), so
nothing is written outside OUT.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

EXTS = (".txt", ".json")


@dataclass(frozen=True)
class Place:
    folder: str  # relative to --out, "" at its top
    stem: str  # the file name without .txt/.json

    def path(self, out: str | Path) -> Path:
        return Path(out, self.folder) if self.folder else Path(out)

    def show(self, out: str | Path) -> str:
        return f"{self.path(out) / self.stem}.txt/.json"


def root_of(paths: tuple[str, ...] | list[str]) -> str:
    """The common root of the paths given (absolute): a folder counts as
    itself, a file as its folder."""
    anchors = [os.path.abspath(p) if os.path.isdir(p) else os.path.dirname(os.path.abspath(p)) for p in paths]
    return os.path.commonpath(anchors) if anchors else os.getcwd()


def _folder(f: str, root: str) -> str:
    rel = os.path.relpath(os.path.dirname(os.path.abspath(f)), root)
    if rel == "." or rel == ".." or rel.startswith(".." + os.sep):  # cannot happen below the common root
        return ""
    return Path(rel).as_posix()


def _clash(stem: str, other: str, numbered: bool) -> bool:
    """Do two stems in one folder claim a file name in common?  With
    numbered counterexamples x.toml also writes x.2.txt, x.3.txt ..."""
    if stem == other:
        return True
    if not numbered:
        return False
    for a, b in ((stem, other), (other, stem)):
        if a.startswith(b + ".") and re.fullmatch(r"[0-9]+", a[len(b) + 1:]):
            return True
    return False


def layout(paths: tuple[str, ...] | list[str], files: list[str],
           numbered: bool = False) -> tuple[dict[str, Place], list[tuple[str, str | None, Place]]]:
    """({spec file: its place}, [(spec, the spec it would clash with or
    None for a folder, the place it gets instead)]).  One file named twice
    (by any path) keeps one place; `numbered`: --max-counterexamples > 1."""
    root = root_of(paths)
    places: dict[str, Place] = {}
    same: dict[str, Place] = {}  # realpath -> place
    owner: dict[tuple[str, str], str] = {}  # (folder, stem) -> spec
    by_folder: dict[str, list[str]] = {}
    folder_of = {f: _folder(f, root) for f in files}
    folders = {""}  # every folder some spec's files go in, and their parents
    for folder in folder_of.values():
        parts = Path(folder).parts
        folders |= {"/".join(parts[:k]) for k in range(1, len(parts) + 1)}
    clashes: list[tuple[str, str | None, Place]] = []
    for f in files:
        key = os.path.realpath(f)
        if key in same:
            places[f] = same[key]
            continue
        folder = folder_of[f]
        base = stem = Path(f).stem
        k = 1
        clash = False
        first: str | None = None  # the spec it clashes with; None: a folder
        while True:
            taken = next((s for s in by_folder.get(folder, []) if _clash(stem, s, numbered)), None)
            as_folder = any(f"{folder}/{stem}{e}".lstrip("/") in folders for e in EXTS)
            if taken is None and not as_folder:
                break
            if not clash:
                clash, first = True, owner[(folder, taken)] if taken is not None else None
            k += 1
            stem = f"{base}-{k}"
        place = Place(folder, stem)
        if clash:
            clashes.append((f, first, place))
        by_folder.setdefault(folder, []).append(stem)
        owner[(folder, stem)] = f
        places[f] = same[key] = place
    return places, clashes


def clash_warning(spec: str, other: str | None, place: Place, out: str | Path) -> str:
    """One warning (wrap it to 72 columns) for a clash `layout` resolved."""
    why = f"the same name as {other}'s" if other else "the name of a folder they need"
    return f"warning: {spec}: counterexamples would take {why}; saved as {place.show(out)} instead"
