"""A mutation fuzzer over spec files and saved traces (#17 item 5).

Each mutant is run through the command line in-process, as a user would
(`verify` for specs, `show` and `replay` for traces), and must end with:

* no traceback: no exception out of the command, and no "internal error"
  line (checker.cross turns a crash in rseqcheck into one);
* an exit status the CLI documents: verify 0-4, show/replay 0-2;
* no hang: within the --timeout it was given plus a few seconds.

Mutants are derived from the bundled specs and the golden traces by a
seeded random generator, so a failure names the seed and index that
reproduce it, and the mutant is written to the pytest tmp folder.

The CI run is short (FUZZ_CI mutants); `-m slow` runs FUZZ_SLOW (10,000
by default; RSEQCHECK_FUZZ_N overrides) and prints the counts.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main

ROOT = Path(__file__).resolve().parent.parent
SEED_SPECS = sorted(ROOT.glob("specs/**/*.toml"))
SEED_TRACES = sorted(ROOT.glob("tests/golden/*.json"))
FUZZ_CI = 100  # spec mutants in the default run (about 10 s); traces: half as many
FUZZ_SLOW = int(os.environ.get("RSEQCHECK_FUZZ_N", "10000"))
TIMEOUT = 3.0
HANG_MARGIN = 8.0  # seconds past --timeout that count as a hang (loading, saving, a busy machine)

HOSTILE = [
    '"', "\\", "\\\\", "\\n", "\\u0000", "\\u001b[31m", "\\r", "*/", "/*", "??/", "é", "日本", "\\u202e",
    "a" * 70, "../../etc/passwd", "/etc/passwd", "tls.x", "tls.", "end", "exit", "stuck", "SIGKILL", "SIGSEGV",
    "0", "-1", "99999999999999999999", "x y", "T0", "cs1", "retry", "@traced", ";", ":", ",", "=", "[", "]",
    "{", "}", "'''", '"""', "#", "nan", "inf", "true", "",
]
NUMBERS = ["0", "-1", "1", "2", "15", "16", "64", "65", "100000", "100001", "-99999", "2147483648",
           "9223372036854775808", "0x10", "1e9", "nan", "inf", "3.5"]
INSTRUCTIONS = [
    "nop", "sud_off", "sud_on begin, end", "sud_on end, begin", "sud_select 7", "sud_select unmapped", "exit",
    "sigreturn", "clone T1", "clone T9", "clone T0, raw", "fork T1", "execve retry", "execve nowhere",
    "fault SIGSEGV", "fault SIGTRAP", "dlclose cs1", "dlclose nope", "jmp nowhere", "store x, 3",
    "store tls.q, 3", "add x, 5", "add tls.refcnt, -1", "beq x, 1, retry", "bne rseq_ret, EINVAL, retry",
    "beq rseq_size, 32, retry", "rseq_register", "rseq_register kernel", "rseq_register unmapped, 32, other",
    "rseq_unregister tls, 33", "assert x == 1", "assert ((((x", "rseq_cs 0", "rseq_cs cs1", "set_desc TRACE",
    "set_desc 0", "syscall getpid @traced", "syscall read", "syscall nope", "membarrier_rseq", "set_tf",
    "clear_tf", "lbl: lbl2: nop", "x:", "retry: nop",
]
EXTRA_SECTIONS = [
    '[outcomes]\nexists = "end == exit && x == 1"\n',
    '[outcomes]\nforall = "zz == 1"\n',
    '[outcomes]\nexists = "' + "(" * 500 + '"\n',
    '[outcomes]\nexists = 3\n',
    '[variables]\n"tls.refcnt" = [0, 3]\nx = [-2, 2]\n',
    '[variables]\nx = [1, 2]\n',
    '[environment]\nsignals = ["SIGUSR1", "SIGSTOP", "SIGSEGV"]\nmax_signals = 3\nmax_nesting = 4\n',
    '[handler.SIGUSR2]\naction = "ignore"\n',
    '[handler.SIGSEGV]\nflags = ["SA_NODEFER"]\ncode = "nop"\n',
    '[thread.T9]\ncode = "clone T9"\n',
    '[rseq_cs.zz]\nstart = "x"\npost_commit = "x"\nabort = "x"\n',
    '[check]\ndepth = 0\n',
]


@dataclass
class Tally:
    tried: int = 0
    by_code: dict[int, int] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)
    slowest: float = 0.0


# ------------------------------------------------------------- spec mutants


def mutate_spec(text: str, rng: random.Random, others: list[str]) -> str:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        text = rng.choice(_SPEC_OPS)(text, rng, others)
    return text


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _op_token(text: str, rng: random.Random, others: list[str]) -> str:
    import re

    toks = list(re.finditer(r"[A-Za-z_][A-Za-z0-9_.]*", text))
    if not toks:
        return text
    m = rng.choice(toks)
    return text[: m.start()] + rng.choice(HOSTILE) + text[m.end():]


def _op_number(text: str, rng: random.Random, others: list[str]) -> str:
    import re

    nums = list(re.finditer(r"\b\d+\b", text))
    if not nums:
        return text
    m = rng.choice(nums)
    return text[: m.start()] + rng.choice(NUMBERS) + text[m.end():]


def _op_line(text: str, rng: random.Random, others: list[str]) -> str:
    ls = _lines(text)
    i = rng.randrange(len(ls))
    k = rng.randrange(5)
    if k == 0:
        del ls[i]
    elif k == 1:
        ls.insert(i, ls[i])
    elif k == 2:
        j = rng.randrange(len(ls))
        ls[i], ls[j] = ls[j], ls[i]
    elif k == 3:
        src = _lines(rng.choice(others))
        ls.insert(i, rng.choice(src))
    else:
        ls.insert(i, "        " + rng.choice(INSTRUCTIONS))
    return "\n".join(ls)


def _op_char(text: str, rng: random.Random, others: list[str]) -> str:
    if not text:
        return text
    i = rng.randrange(len(text))
    c = rng.choice(['"', "\\", "\n", "[", "]", "=", "\x00", "\x1b", "\t", " ", "#", "'", "é", chr(rng.randrange(32, 127))])
    k = rng.randrange(3)
    if k == 0:
        return text[:i] + c + text[i + 1:]
    if k == 1:
        return text[:i] + c + text[i:]
    return text[:i] + text[i + 1:]


def _op_truncate(text: str, rng: random.Random, others: list[str]) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _op_section(text: str, rng: random.Random, others: list[str]) -> str:
    return text + "\n" + rng.choice(EXTRA_SECTIONS)


def _op_code(text: str, rng: random.Random, others: list[str]) -> str:
    """An instruction inserted inside a code block (after a `code = \"\"\"`)."""
    at = [i for i, line in enumerate(_lines(text)) if line.strip().startswith("code") and '"""' in line]
    if not at:
        return _op_line(text, rng, others)
    ls = _lines(text)
    i = rng.choice(at) + 1 + rng.randrange(3)
    ls.insert(min(i, len(ls)), "        " + rng.choice(INSTRUCTIONS))
    return "\n".join(ls)


_SPEC_OPS = [_op_token, _op_token, _op_number, _op_line, _op_line, _op_char, _op_truncate, _op_section,
             _op_code, _op_code, _op_code]


# ------------------------------------------------------------ trace mutants


def _random_value(rng: random.Random):
    k = rng.randrange(10)
    return [
        lambda: None, lambda: True, lambda: rng.choice([0, -1, 2**64, 10**30]), lambda: 1.5,
        lambda: rng.choice(HOSTILE).replace("\\u001b", "\x1b").replace("\\u0000", "\x00"),
        lambda: [], lambda: {}, lambda: {"a": [1, {"b": None}]}, lambda: "x" * 10000,
        lambda: json.loads("[" * 30 + "]" * 30),
    ][k]()


def mutate_trace(data, rng: random.Random):
    """A random change somewhere in the JSON tree: replace, delete or add."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        path = []
        node = data
        while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
            key = rng.choice(list(node.keys())) if isinstance(node, dict) else rng.randrange(len(node))
            path.append((node, key))
            node = node[key]
        if not path:
            data = _random_value(rng)
            continue
        parent, key = path[-1]
        k = rng.randrange(4)
        if k == 0:
            parent[key] = _random_value(rng)
        elif k == 1:
            del parent[key]
        elif k == 2 and isinstance(parent, dict):
            parent[rng.choice(["incoming_graph_data", "#meta", "title", "spec", "label", "vars", "states",
                               "action", "actor", "name", "rank", "distinct"])] = _random_value(rng)
        else:
            parent[key] = _random_value(rng) if not isinstance(parent[key], str) else \
                parent[key] + rng.choice(HOSTILE)
    return data


# ------------------------------------------------------------------ running


def run_cli(args: list[str]) -> tuple[int, str, str, BaseException | None]:
    r = CliRunner().invoke(main, args)
    exc = r.exception if r.exception is not None and not isinstance(r.exception, SystemExit) else None
    return r.exit_code, r.stdout, r.stderr, exc


def check(tally: Tally, kind: str, where: Path, args: list[str], codes: set[int], limit: float) -> None:
    t = time.monotonic()
    code, out, err, exc = run_cli(args)
    took = time.monotonic() - t
    tally.tried += 1
    tally.by_code[code] = tally.by_code.get(code, 0) + 1
    tally.slowest = max(tally.slowest, took)
    problem = None
    if exc is not None:
        problem = f"exception {type(exc).__name__}: {exc}"
    elif "Traceback" in out + err or "internal error" in out + err:
        problem = "traceback or internal error: " + (err or out).strip().splitlines()[-1][:300]
    elif any(not (c.isprintable() or c in "\n\t") for c in out + err):
        problem = "a control character reached the terminal: " + repr((out + err)[:300])
    elif code not in codes:
        problem = f"exit {code}: {(err or out).strip()[:300]}"
    elif took > limit:
        problem = f"took {took:.1f} s (limit {limit:.0f} s)"
    if problem:
        tally.defects.append(f"{kind} {where}: {' '.join(args)}: {problem}")


def check_c(tally: Tally, p: Path, c_file: Path) -> None:
    """`run --emit-c`: a spec that loads yields C that gcc accepts (a string
    that ended early would not compile, or would compile into code)."""
    before = len(tally.defects)
    check(tally, "emit-c", p, ["run", str(p), "--emit-c", str(c_file)], {0, 2}, HANG_MARGIN)
    if len(tally.defects) == before and c_file.exists() and shutil.which("gcc"):
        r = subprocess.run(["gcc", "-fsyntax-only", "-trigraphs", "-x", "c", str(c_file)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            tally.defects.append(f"emit-c {p}: gcc refuses the generated C: {r.stderr.strip()[:300]}")
        c_file.unlink()


def fuzz_specs(n: int, seed: int, tmp: Path, tally: Tally, emit_c: float = 0.0) -> None:
    """n spec mutants through verify; a fraction `emit_c` of them also
    through `run --emit-c` and gcc."""
    rng = random.Random(seed)
    texts = [p.read_text() for p in SEED_SPECS]
    out_dir = tmp / "cx"
    for i in range(n):
        text = mutate_spec(rng.choice(texts), rng, texts)
        p = tmp / f"spec-{seed}-{i}.toml"
        p.write_text(text, encoding="utf-8", errors="surrogatepass")
        engine = rng.choice(["explicit"] * 6 + ["bmc", "induction", "all"])
        depth = rng.choice(["8", "12", "25"])
        args = ["verify", str(p), "--out", str(out_dir), "--timeout", str(TIMEOUT), "--depth", depth,
                "--engine", engine, "--format", rng.choice(["text", "json"])]
        if engine in ("explicit", "all") and rng.random() < 0.1:
            args += ["--max-counterexamples", "3"]
        before = len(tally.defects)
        check(tally, "spec", p, args, {0, 1, 2, 3, 4}, TIMEOUT * (3 if engine == "all" else 1) + HANG_MARGIN)
        if rng.random() < emit_c:
            check_c(tally, p, tmp / f"spec-{seed}-{i}.c")
        if len(tally.defects) == before:
            p.unlink()  # keep only the mutants that found something


def fuzz_traces(n: int, seed: int, tmp: Path, tally: Tally) -> None:
    rng = random.Random(seed)
    seeds = [json.loads(p.read_text()) for p in SEED_TRACES]
    for i in range(n):
        if rng.random() < 0.15:  # text-level damage: truncation, a flipped byte
            raw = json.dumps(rng.choice(seeds))
            j = rng.randrange(len(raw))
            raw = raw[:j] + rng.choice(["", "\x00", "\\", '"', "{", "]", "\\ud800"]) + raw[j + rng.randrange(2):]
        else:
            raw = json.dumps(mutate_trace(json.loads(json.dumps(rng.choice(seeds))), rng))
        p = tmp / f"trace-{seed}-{i}.json"
        p.write_text(raw, encoding="utf-8", errors="surrogatepass")
        before = len(tally.defects)
        if rng.random() < 0.5:
            check(tally, "trace", p, ["show", str(p), "--format", rng.choice(["text", "json", "dot", "graphml"])],
                  {0, 2}, HANG_MARGIN)
        else:
            check(tally, "trace", p, ["replay", str(p)], {0, 1, 2}, HANG_MARGIN + 10)
        if len(tally.defects) == before:
            p.unlink()


def _report(tally: Tally, took: float) -> str:
    codes = ", ".join(f"exit {k}: {v}" for k, v in sorted(tally.by_code.items()))
    return (f"{tally.tried} mutants in {took:.0f} s ({codes}); slowest {tally.slowest:.1f} s; "
            f"{len(tally.defects)} defects" + "".join(f"\n  {d}" for d in tally.defects[:20]))


def test_fuzz_specs_and_traces_briefly(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # traces name their specs relative to the checkout
    tally = Tally()
    t = time.monotonic()
    fuzz_specs(FUZZ_CI, 17, tmp_path, tally, emit_c=0.1)
    fuzz_traces(FUZZ_CI // 2, 17, tmp_path, tally)
    assert not tally.defects, _report(tally, time.monotonic() - t)
    assert tally.by_code.get(2, 0) > 0 and tally.by_code.get(0, 0) + tally.by_code.get(1, 0) > 0


@pytest.mark.slow
def test_fuzz_at_length(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(ROOT)
    tally = Tally()
    t = time.monotonic()
    seed = int(os.environ.get("RSEQCHECK_FUZZ_SEED", "2026"))
    fuzz_specs(FUZZ_SLOW, seed, tmp_path, tally, emit_c=0.25)
    fuzz_traces(FUZZ_SLOW // 5, seed, tmp_path, tally)
    report = _report(tally, time.monotonic() - t)
    with capsys.disabled():
        print("\nfuzz:", report)
    assert not tally.defects, report
