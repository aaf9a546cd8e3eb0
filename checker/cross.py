"""One spec under one engine, or under every engine with their verdicts
and shortest counterexample lengths compared (`verify --engine all`)."""

from __future__ import annotations

import os

from checker.verify import Outcome, check_spec


def check_one(f: str, **kw) -> Outcome:
    """check_spec, with a bug in rseqcheck itself reported on one line (set
    RSEQCHECK_DEBUG=1 for the traceback) instead of ending the whole run."""
    try:
        return check_spec(f, **kw)
    except Exception as e:
        if os.environ.get("RSEQCHECK_DEBUG"):
            raise
        msg = f"{f}: internal error: {type(e).__name__}: {e} (a bug in rseqcheck, not in the spec; RSEQCHECK_DEBUG=1 shows the traceback)"
        return Outcome(f, error=msg)


def check_all(f: str, por: bool, **kw) -> Outcome:
    """Every engine on one spec; the explicit outcome is reported, with
    `disagreement` set when another engine's verdict or shortest
    counterexample length differs."""
    base = check_one(f, engine="explicit", por=por, **kw)
    if base.error or base.result is None:
        return base
    lengths = {}
    r = base.result
    if r.verdict == "violation" and not r.shortest:  # POR pruned: ask for the shortest
        r = check_one(f, engine="explicit", por=False, **kw).result or r
    runs = {"explicit": r}
    for eng in ("bmc", "induction"):
        o = check_one(f, engine=eng, por=por, **kw)
        if o.error or o.result is None:
            base.disagreement = f"{eng}: {o.error}"
            return base
        runs[eng] = o.result
    for eng, res in runs.items():
        lengths[eng] = len(res.trace) - 1 if res.verdict == "violation" else None
    known = {e: x for e, x in runs.items() if x.verdict != "unknown"}
    verdicts = {x.verdict for x in known.values()}
    lens = {lengths[e] for e in known}
    if len(verdicts) > 1 or len(lens) > 1:
        base.disagreement = "; ".join(
            f"{e}: {x.verdict}" + (f" of {x.prop} in {lengths[e]} steps" if lengths[e] is not None else "")
            + (f" ({x.reason})" if x.reason else "") for e, x in runs.items())
    else:
        base.engines = {e: (x.verdict + (f" ({x.reason})" if x.reason else "")) for e, x in runs.items()}
    return base
