"""Helpers for semantic tests: build a spec from text, explore it completely,
and ask what is reachable."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from rseqcheck.checker.engines.compile import compile_system
from rseqcheck.model.build import build_system
from rseqcheck.model.ir import System
from rseqcheck.model.spec import load_spec


def system_of(tmp_path: Path, text: str, name: str = "t.toml") -> System:
    p = tmp_path / name
    p.write_text(text)
    return build_system(load_spec(p))


class Space:
    """Every reachable state (no reduction, no bound) and every fired action."""

    def __init__(self, system: System, limit: int = 500_000, on_step=None):
        """`on_step(state, action, successor)`, if given, sees every
        transition of the search."""
        comp = compile_system(system)
        init = system.initial_state()
        seen = {init}
        todo = deque([init])
        fired: set[int] = set()
        while todo:
            s = todo.popleft()
            if comp.terminal(s):
                continue
            out: list = []
            comp.succ(s, out)
            for a, t in out:
                fired.add(a)
                if on_step is not None:
                    on_step(s, a, t)
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
                    assert len(seen) < limit, "state space larger than the test expects"
        self.system = system
        self.states = seen
        self.labels = {system.actions[a].label for a in fired}
        self.idx = system.index()

    def shown(self, s: tuple) -> dict:
        return {v.name: v.type.fmt(x) for v, x in zip(self.system.vars, s)}

    def any(self, **want) -> bool:
        """Some reachable state has these shown values (dots as '__')."""
        return any(self._match(s, want) for s in self.states)

    def where(self, **want) -> list[dict]:
        return [self.shown(s) for s in self.states if self._match(s, want)]

    def _match(self, s: tuple, want: dict) -> bool:
        sh = self.shown(s)
        return all(sh[k.replace("__", ".")] == str(v) for k, v in want.items())

    def fired(self, fragment: str) -> bool:
        return any(fragment in lab for lab in self.labels)


def spec_text(
    code: str,
    *,
    preset: str = "linux-6.18",
    rules: dict[str, str] | None = None,
    env: str = "",
    handlers: str = "",
    cs: str = "",
    props: tuple[str, ...] = ("no-unexpected-kill",),
    thread_extra: str = "",
    depth: int = 200,
) -> str:
    r = "\n".join(f'"{k}" = "{v}"' for k, v in (rules or {}).items())
    plist = ", ".join(f'"{p}"' for p in props)
    return f'''[spec]
title = "test"
preset = "{preset}"
[rules]
{r}
[environment]
{env}
[thread.T0]
{thread_extra}
code = """
{code}
"""
{handlers}
{cs}
[check]
properties = [{plist}]
depth = {depth}
'''


CS1 = """
[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"
"""

USR1 = '''
[handler.SIGUSR1]
flags = [{flags}]
code = """
        syscall getpid
        sigreturn
"""
'''


def one_thread(code: str, *, env: str = "", thread: str = "", extra: str = "",
               props: str = '"no-unexpected-kill"', depth: int = 80, preset: str = "linux-6.18") -> str:
    """A spec with one thread T0 running `code`; `thread` adds keys to
    [thread.T0] (ptrace, seccomp), `extra` whole tables (handlers)."""
    return f'''[spec]
title = "t"
preset = "{preset}"
[environment]
{env}
[thread.T0]
code = """
{code}
"""
{thread}
{extra}
[check]
properties = [{props}]
depth = {depth}
'''
