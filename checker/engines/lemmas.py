"""Candidate invariants from the explicit engine's reachable states.

When a system's reachable states can be enumerated (checker.compile), they
are an exact oracle for "is this state reachable?".  `Reach.block(s)` turns
an unreachable state s into a cube (some of s's variable = value literals)
that no reachable state matches, so "not this cube" holds in every
reachable state.  Such clauses are only candidates for the symbolic
engines: a proof built from them is checked by Z3 alone (see
`checker.symbolic.strengthen`), so a wrong oracle can cost a proof, never
make a false one.  Like every engine, nothing here knows what the
variables mean.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rseqcheck.checker.engines.compile import compile_packed
from rseqcheck.model.ir import ModelError, System

Cube = tuple[tuple[int, int], ...]  # (variable index, value), by index


class Reach:
    """The reachable states of a system, indexed for cube queries: per
    variable and value, the set of states having it, as a bit set (an int,
    one bit per state) so that a cube's matches are an AND of a few ints."""

    def __init__(self, system: System, states: Sequence[tuple[int, ...]], diameter: int) -> None:
        self.system = system
        self.n = len(states)
        self.diameter = diameter  # every reachable state is at most this many steps from the initial one
        self.members = set(states)
        self.bits: list[dict[int, int]] = []
        size = self.n // 8 + 1
        for i in range(len(system.vars)):
            # bytearrays, then one int each: OR-ing bits into an int would be quadratic
            arrs: dict[int, bytearray] = {}
            for k, s in enumerate(states):
                a = arrs.get(s[i])
                if a is None:
                    a = arrs[s[i]] = bytearray(size)
                a[k >> 3] |= 1 << (k & 7)
            self.bits.append({x: int.from_bytes(a, "little") for x, a in arrs.items()})
        self.all = (1 << self.n) - 1

    def matches(self, cube: Cube) -> int:
        m = self.all
        for i, x in cube:
            m &= self.bits[i].get(x, 0)
            if not m:
                return 0
        return m

    def block(self, state: tuple[int, ...]) -> Cube:
        """A cube holding `state`, matching no reachable state, with
        literals dropped greedily: first those that most reachable states
        share (they exclude least), so the rare values that make `state`
        unreachable are kept."""
        assert state not in self.members, "asked to block a reachable state"
        order = sorted(range(len(state)), key=lambda i: -self.bits[i].get(state[i], 0).bit_count())
        keep = dict(enumerate(state))
        for i in order:
            x = keep.pop(i)
            if self.matches(tuple(keep.items())):
                keep[i] = x
        return tuple(sorted(keep.items()))


def reachable(system: System, max_states: int, timeout: float | None = None) -> Reach | None:
    """Every reachable state by breadth-first search, or None when there
    are more than `max_states`, time runs out, or one violates a property
    or leaves a range (then there is nothing to prove)."""
    deadline = time.monotonic() + timeout if timeout else None
    pk = compile_packed(system)
    init = pk.pack(system.initial_state())
    if pk.check(init) >= 0:
        return None
    seen: dict[int, int] = {init: -1}
    frontier = [] if pk.terminal(init) else [init]
    diameter = 0
    while frontier:
        nxt: list[int] = []
        before = len(seen)
        try:
            pk.expand(frontier, seen, nxt, [])
        except (pk.Violation, ModelError):
            return None
        if len(seen) > max_states or (deadline and time.monotonic() > deadline):
            return None
        frontier = nxt
        diameter += len(seen) > before  # a new level (terminal states included)
    return Reach(system, [pk.unpack(x) for x in seen], diameter)
