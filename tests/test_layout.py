"""The layering of model/ (issue #14 item 6): model imports form no
cycle; the toolkit (model/builder.py) imports no mechanism.  Imports are
read with `ast`, at module level and inside functions alike, so a lazy
import cannot hide a circle."""

from __future__ import annotations

import ast
from pathlib import Path

MODEL = Path(__file__).resolve().parent.parent / "model"

# what the toolkit may import: leaf modules that know no mechanism
TOOLKIT_MAY_IMPORT = {"ir", "spec", "program", "rules", "signals", "syscalls", "properties", "errors", "sources",
                      "names", "files"}


def imports(path: Path, modules: set[str]) -> dict[str, int]:
    """model modules the file imports -> the line of the first import."""
    out: dict[str, int] = {}
    def bare(name: str | None) -> str | None:  # rseqcheck.model.x -> model.x
        return name[len("rseqcheck."):] if name and name.startswith("rseqcheck.") else name

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        mod = bare(node.module) if isinstance(node, ast.ImportFrom) else None
        if mod == "model":
            names = [a.name for a in node.names]
        elif mod and mod.startswith("model."):
            names = [mod.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [bare(a.name).split(".")[1] for a in node.names if bare(a.name).startswith("model.")]
        for n in names:
            if n in modules:
                out.setdefault(n, node.lineno)
    return out


def graph(root: Path = MODEL) -> dict[str, dict[str, int]]:
    mods = {p.stem for p in root.glob("*.py")}
    return {p.stem: imports(p, mods) for p in sorted(root.glob("*.py"))}


def find_cycle(g: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of g as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(g.get(v, {})):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (c := visit(w)) is not None:
                return c
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(g):
        if v not in state and (c := visit(v)) is not None:
            return c
    return None


def test_model_imports_form_no_cycle() -> None:
    g = graph()
    assert "builder" in g["rseq"] and "user" in g["build"]  # the imports are read at all
    cycle = find_cycle(g)
    assert cycle is None, "import cycle: " + " -> ".join(
        f"{a} (line {g[a][b]})" for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_toolkit_imports_no_mechanism() -> None:
    g = graph()
    assert set(g["builder"]) <= TOOLKIT_MAY_IMPORT, set(g["builder"]) - TOOLKIT_MAY_IMPORT
    # and the leaves it uses import nothing above them
    for leaf in set(g["builder"]):
        assert set(g[leaf]) <= TOOLKIT_MAY_IMPORT, (leaf, set(g[leaf]) - TOOLKIT_MAY_IMPORT)


def test_mechanisms_use_the_toolkit_not_the_assembly() -> None:
    g = graph()
    users = sorted(m for m, deps in g.items() if "build" in deps)
    assert users == [], users


def test_the_checks_see_a_lazy_cycle(tmp_path: Path) -> None:
    # the checks must fail where they should: a function-level import
    # that closes a circle is found, with its line
    (tmp_path / "a.py").write_text("from rseqcheck.model.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from rseqcheck.model import a\n    return a\n")
    (tmp_path / "c.py").write_text("import model.a\n")
    g = graph(tmp_path)
    assert g == {"a": {"b": 1}, "b": {"a": 2}, "c": {"a": 1}}
    assert find_cycle(g) == ["a", "b", "a"]
    del g["b"]["a"]
    assert find_cycle(g) is None
