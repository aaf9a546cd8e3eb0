"""How much thread symmetry could save on a spec, measured rather than
guessed: enumerate the reachable states (full search), map each to the
least of its images under the permutations of threads that run the same
code and start on the same CPU, and count the distinct images (orbits).
The state space a symmetry-reduced search would visit has exactly that
many states.  Each permutation is checked to be a symmetry of the
transition relation on every reachable state s (succ(p(s)) = p(succ(s))),
else the count means nothing.  (The initial state itself is not symmetric:
T0 runs first; a reduced search from the least image of it finds the same
orbits, since the images of what is reachable from it are what is
reachable from its image.)  Per permutation: thread T's variables move to U's; an ip0
moves from T's code block to the same offset in U's; descriptor instances
(`rseq_cs`) and `cpuN.curr` values are renamed; everything else keeps its
value (CPU numbers included: the permuted threads share their CPU).

    python benchmarks/symmetry_potential.py benchmarks/specs/percpu_t2_k1_c1.toml
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rseqcheck.checker.engines.explicit import _Search  # noqa: E402
from rseqcheck.model.build import build_system  # noqa: E402
from rseqcheck.model.spec import load_spec  # noqa: E402


def permutations(system) -> list[list]:
    """Each non-identity thread permutation as (target index, value map) per
    variable: model/symmetry.py's, which the engine's reduction uses."""
    return system.symmetries


def main(path: str) -> None:
    spec = load_spec(path)
    system = build_system(spec)
    S = _Search(system, spec.depth, False, None, None, None, 1.0)
    r = S.run()
    perms = permutations(system)
    n = len(system.vars)
    orbits = set()
    broken = 0  # states where a permutation does not commute with the successor function

    def image(table, s):
        img = [0] * n
        for i, (j, vmap) in enumerate(table):
            img[j] = s[i] if vmap is None else vmap.get(s[i], s[i])
        return tuple(img)

    def succ(x):
        out: list = []
        S.pk.succ(x, out)
        return {t for _, t in out}

    for x in S.seen:
        s = S.pk.unpack(x)
        best = s
        for table in perms:
            t = image(table, s)
            mine = {S.pk.pack(image(table, S.pk.unpack(y))) for y in succ(x)}
            broken += mine != succ(S.pk.pack(t))
            if t < best:
                best = t
        orbits.add(best)
    print(f"{path}: {r.verdict}, {r.stats.states:,} states, {len(perms) + 1} symmetries, "
          f"{len(orbits):,} orbits ({r.stats.states / len(orbits):.2f}x); states where a permutation is no symmetry: {broken}")


if __name__ == "__main__":
    for p in sys.argv[1:]:
        main(p)
