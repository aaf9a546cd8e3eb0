"""Issue #17, hardening: what a hostile or careless spec, trace or command
line can make rseqcheck do.  Each test is one finding of the issue (or of
tests/test_fuzz.py) and asserts the outcome a user sees: the exit status,
the exact one-line message, the files present or absent."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from rseqcheck.checker import cross
from rseqcheck.checker import verify as verify_mod
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.conformance.cgen import generate
from rseqcheck.checker.engines.explicit import SearchResult, Stats
from rseqcheck.checker.inputs import remove_stale_tmp
from rseqcheck.checker.outputs.escape import c_ident, c_string, dot_string, terminal, xml_clean
from rseqcheck.checker.outputs.trace import render_dot, render_graphml
from rseqcheck.checker.verify import Outcome, junit_xml, model_error
from rseqcheck.model.ir import ModelError
from rseqcheck.model.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
RSEQCHECK = [sys.executable, "-c", "from rseqcheck.checker.cli.app import main; main()"]


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


def no_traceback(*texts: str) -> None:
    for t in texts:
        assert "Traceback" not in t and "internal error" not in t, t


CS_SPEC = '''\
[spec]
title = {title}
preset = "linux-6.18"
expect = "holds"

[thread.{thread}]
code = """
retry: rseq_cs {cs}
begin: nop
end:   exit
abort: jmp retry
"""

[rseq_cs.{cs_key}]
start = "begin"
post_commit = "end"
abort = "abort"

[check]
properties = ["rseq-cs-atomic"]
depth = 20
'''


def cs_spec(title='"t"', thread="T0", cs="cs1", cs_key=None) -> str:
    return CS_SPEC.format(title=title, thread=thread, cs=cs, cs_key=cs_key or cs)


# ------------------------------------------------------ 1. names and escaping


def test_injection_through_a_descriptor_name_is_refused_at_load(tmp_path: Path) -> None:
    """The issue's exploit: a backslash-newline in a descriptor name ended the
    asm string and the rest of the name was compiled and run."""
    evil = r'"x\\\n\");\n__attribute__((constructor)) static void pwn(void) { creat(\"/tmp/pwned\", 0644); }\n//"'
    p = tmp_path / "evil.toml"
    p.write_text(cs_spec(cs_key=evil))
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    assert code == 2
    assert err.startswith(f"{p}:14: rseq_cs descriptor name 'x\\\\\\n\");\\n__")
    assert err.endswith("is not an identifier (letters, digits and _, not starting with a digit, at most 64 characters)\n")
    assert len(err.splitlines()) == 1
    no_traceback(out, err)
    code, out, err = run("run", str(p), "--runs", "1")
    assert code == 2 and err.startswith(f"{p}:14: rseq_cs descriptor name ") and "is not an identifier" in err
    assert not (tmp_path / "cx").exists()


HOSTILE_NAMES = [
    'a\\"b', "a\\\\b", "a\\nb", "a\\u0000b", "a*/b", "a??/b", "é", "a b", "1a", "a" * 65, "a\\rb", "a.b", "../x", "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
@pytest.mark.parametrize("field", ["thread", "cs_key", "variable"])
def test_hostile_identifier_is_a_spec_error_at_its_line(tmp_path: Path, field: str, name: str) -> None:
    q = f'"{name}"'
    if field == "thread":
        text, line = cs_spec(thread=q), 6
    elif field == "cs_key":
        text, line = cs_spec(cs_key=q), 14
    else:
        text, line = cs_spec() + f"\n[variables]\n{q} = [0, 1]\n", 24
    p = tmp_path / "h.toml"
    p.write_text(text)
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    assert code == 2, (out, err)
    assert err.startswith(f"{p}:{line}: ") and "is not an identifier" in err, err
    assert "\x00" not in err and "\n" not in err.rstrip("\n")  # the name is shown escaped, on one line
    no_traceback(out, err)


@pytest.mark.parametrize("code_line,msg", [
    ('syscall getpid @tr\\"x', "unexpected"),          # a tag is an identifier
    ("rseq_register a\\\\b", "rseq_register takes"),     # so is an rseq area
    ("clone T\\u0001", "clone takes"),                 # and a thread operand
    ("dlclose x" + "y" * 70, "operand name 'xyyyyyyyyyy"),  # bounded length
    ("nop\\u001b[31m", "unknown instruction 'nop\\x1b[31m'"),
    ("lab" + "e" * 70 + ": nop", "label name"),
])
def test_hostile_operand_in_code_is_a_spec_error(tmp_path: Path, code_line: str, msg: str) -> None:
    text = cs_spec().replace("begin: nop", f"begin: nop\n       {code_line}")
    p = tmp_path / "o.toml"
    p.write_text(text)
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    assert code == 2 and err.startswith(f"{p}:10: ") and msg in err, err
    no_traceback(out, err)


@pytest.mark.parametrize("key,value,msg", [
    ("title", '"red \\u001b[31m alert"', "title contains the control character U+001B at position 5"),
    ("title", '"a\\u0000b"', "title contains the control character U+0000 at position 2"),
    ("title", '"two\\nlines"', "title contains the control character U+000A at position 4"),
    ("source", '"rtl \\u202e override"', "source contains the control character U+202E at position 5"),
    ("title", '"' + "x" * 301 + '"', "title is 301 characters long (at most 300)"),
    ("description", '"bell \\u0007"', "description contains the control character U+0007 at position 6"),
])
def test_free_text_must_be_printable_and_bounded(tmp_path: Path, key: str, value: str, msg: str) -> None:
    text = cs_spec().replace('title = "t"', f'title = "t"\n{key} = {value}' if key != "title" else f"title = {value}")
    p = tmp_path / "t.toml"
    p.write_text(text)
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    line = 2 if key == "title" else 3
    if "control character" in msg:
        msg += " (free text must be printable)"
    assert code == 2 and err == f"{p}:{line}: {msg}\n", err


def test_legitimate_free_text_with_unicode_punctuation_loads(tmp_path: Path) -> None:
    p = tmp_path / "u.toml"
    p.write_text(cs_spec(title='"Signal — in a “critical” section: ‘abort’ … naïve 日本"'))
    assert load_spec(p).title.startswith("Signal — in a “critical”")


def test_every_bundled_spec_name_passes_validation() -> None:
    for f in sorted(ROOT.glob("specs/**/*.toml")):
        load_spec(f)  # raises SpecError if a bundled name were refused


C_HOSTILE = ['"', "\\", "\n", "\r", "*/", "/*", "??/", "??=", "???", "\x00", "é", "日本", "\U0001f600", "\t",
             '"); system("id"); ("', "\\\n", "\x7f", "\x1b[2J", "0\\0", "%s%n"]


def test_c_string_round_trips_every_hostile_input_through_a_real_compiler(tmp_path: Path) -> None:
    """Compile the literals (with trigraphs on, the strictest reading) and
    print their bytes: each must be exactly the UTF-8 of the input."""
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    cases = C_HOSTILE + ["".join(C_HOSTILE)]
    body = "\n".join(f"\tdump({c_string(s)}, sizeof({c_string(s)}) - 1);" for s in cases)
    src = tmp_path / "t.c"
    src.write_text('#include <stdio.h>\nstatic void dump(const char *s, unsigned long n) {\n'
                   '\tfor (unsigned long i = 0; i < n; i++) printf("%02x", (unsigned char)s[i]);\n\tputchar(10);\n}\n'
                   f"int main(void) {{\n{body}\n\treturn 0;\n}}\n")
    exe = tmp_path / "t"
    r = subprocess.run(["gcc", "-std=c99", "-trigraphs", "-Wall", "-Werror", "-o", str(exe), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    assert got == [s.encode("utf-8").hex() for s in cases]


def test_c_string_output_is_one_printable_ascii_line() -> None:
    for s in C_HOSTILE:
        lit = c_string(s)
        assert lit.isascii() and lit.isprintable() and lit[0] == lit[-1] == '"'
        assert "??" not in lit and "*/" not in lit.replace("\\", "")[1:-1] or s in ("*/",)


def test_generator_refuses_a_name_that_is_not_an_identifier(tmp_path: Path) -> None:
    """The second wall: a name that got past load (here, set after it) never
    reaches the generated C."""
    p = tmp_path / "ok.toml"
    p.write_text(cs_spec())
    spec = load_spec(p)
    assert "rsc_cs_cs1_T0" in generate(spec).source
    spec.cs["cs1"].name = 'x\\\n"); evil();'
    with pytest.raises(ValueError, match="not an identifier"):
        generate(spec)
    with pytest.raises(ValueError):
        c_ident("a-b")


def _dot_unquote(lit: str) -> str:
    assert lit[0] == lit[-1] == '"'
    out, i, body = [], 0, lit[1:-1]
    while i < len(body):
        c = body[i]
        if c == '"':
            raise AssertionError(f"unescaped quote in {lit!r}")
        if c == "\\":
            nxt = body[i + 1]
            out.append({"l": "\n", "\\": "\\", '"': '"'}.get(nxt, "\\" + nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("s", C_HOSTILE)
def test_dot_string_never_ends_early(s: str) -> None:
    lit = dot_string(s)
    assert "\n" not in lit and "\r" not in lit
    back = _dot_unquote(lit)
    if s.isprintable() or s == "\n":
        assert back == s


def _graph(title: str) -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph.update(title=title, source=title, spec=title, property=title, version="x", spec_hash=title)
    g.add_node(0, index=0, vars={"x": title})
    g.add_node(1, index=1, vars={"x": "b"})
    g.add_edge(0, 1, label=title, actor=title, kernel_fn=title, rule=title, proc=title)
    return g


@pytest.mark.parametrize("s", C_HOSTILE + ["]]>", "<x/>", "&amp;", "\ud800"])
def test_graphml_and_dot_of_hostile_strings_parse(s: str) -> None:
    g = _graph(s)
    doc = render_graphml(g)
    ET.fromstring(doc.encode("utf-8"))  # well-formed XML, encodable
    dot = render_dot(g)
    for line in dot.splitlines()[1:-1]:  # every statement on its own line, strings closed
        assert line.rstrip().endswith((";", "{")), line


@pytest.mark.parametrize("s", C_HOSTILE + ["]]>", "<x/>", "&amp;"])
def test_dot_of_hostile_rules_proposal_and_addresses_parses(s: str) -> None:
    """DOT now states the rules and the proposal, and shows code addresses
    as lines: a trace's strings reach it through those too."""
    g = _graph(s)
    g.graph.update(preset=s, rules={s: s}, proposal={"preset": s, "rules": {s: s}}, addresses={s: 7})
    g.nodes[0]["vars"]["T0.ip0"] = s
    g.edges[0, 1]["line"] = 3
    dot = render_dot(g)
    for line in dot.splitlines()[1:-1]:
        assert line.rstrip().endswith((";", "{")), line
    assert "T0.ip0=L7" in dot and "1. " in dot


def test_junit_with_hostile_messages_is_well_formed_xml() -> None:
    bad = 'spec.toml:1: a "b" <c> ]]> & \x1b[31m \x00 \ud800'
    o = Outcome("x\x01.toml", error=bad)
    doc = junit_xml([o])
    root = ET.fromstring(doc.encode("utf-8"))
    assert root.get("errors") == "1"
    assert xml_clean("a\x00b") == "a\ufffdb"
    assert terminal("a\x1b[2Jb") == "a\\x1b[2Jb"


# ------------------------------------------------------------- file names


def test_two_specs_with_one_name_do_not_overwrite_each_others_traces(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    viol = (ROOT / "specs/seed000/unprotected.toml").read_text()
    for d in ("a", "b"):
        Path(d).mkdir()
        Path(d, "x.toml").write_text(viol.replace("Next-syscall", f"{d}: Next-syscall"))
    code, out, err = run("verify", "a", "b", "--out", "cx")
    assert (code, err) == (0, ""), (out, err)
    assert sorted(str(p) for p in Path("cx").rglob("*")) == ["cx/a", "cx/a/x.json", "cx/a/x.txt",
                                                             "cx/b", "cx/b/x.json", "cx/b/x.txt"]
    assert json.loads(Path("cx/a/x.json").read_text())["#meta"]["spec"] == "a/x.toml"
    assert json.loads(Path("cx/b/x.json").read_text())["#meta"]["spec"] == "b/x.toml"
    assert run("replay", "cx/b/x.json")[0] == 0


@pytest.mark.parametrize("named", ["/etc/passwd", "../../../etc/passwd", "secret.txt", "sub/../../x.toml"])
def test_replay_opens_only_a_spec_below_the_current_folder(tmp_path: Path, monkeypatch, named: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("secret.txt").write_text("[root]\npassword = 'hunter2'\n")
    trace = json.loads((ROOT / "tests/golden/unprotected.json").read_text())
    trace["#meta"]["spec"] = named
    Path("t.json").write_text(json.dumps(trace))
    code, out, err = run("replay", "t.json")
    assert code == 2
    assert err.startswith(f"t.json: its spec {named!r} is not a .toml file below this folder") or \
        "leads outside" in err
    assert "hunter2" not in out + err and "root:" not in out + err


def test_replay_refuses_a_symlinked_spec_leading_outside(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "outside.toml").write_text("[secret]\nkey = 1\n")
    work = tmp_path / "w"
    work.mkdir()
    monkeypatch.chdir(work)
    os.symlink(tmp_path / "outside.toml", "s.toml")
    trace = json.loads((ROOT / "tests/golden/unprotected.json").read_text())
    trace["#meta"]["spec"] = "s.toml"
    Path("t.json").write_text(json.dumps(trace))
    code, out, err = run("replay", "t.json")
    assert code == 2 and "leads outside this folder" in err and "secret" not in err


# ------------------------------------------------------ 2. resource limits

MANY = 32


def _many_threads(n: int = MANY) -> str:
    parts = ['[spec]\ntitle = "many threads"\npreset = "linux-6.18"\nexpect = "holds"\n\n'
             '[environment]\nsignals = ["SIGUSR1"]\nmax_signals = 1\npreemption = true\n']
    for i in range(n):
        parts.append(f'[thread.T{i}]\ncode = """\nretry: rseq_cs cs1\nbegin: nop\n       nop\n'
                     f'end:   syscall getpid\n       exit\nabort: jmp retry\n"""\n')
    parts.append('[handler.SIGUSR1]\ncode = """\n  syscall getpid\n"""\n')
    parts.append('[rseq_cs.cs1]\nstart = "begin"\npost_commit = "end"\nabort = "abort"\n\n'
                 '[check]\nproperties = ["rseq-cs-atomic"]\ndepth = 60\n')
    return "\n".join(parts)


@pytest.mark.parametrize("engine", ["explicit", "bmc"])
def test_timeout_1_on_a_32_thread_spec_returns_within_seconds(tmp_path: Path, engine: str) -> None:
    """Building and compiling such a spec takes about a minute: the watchdog
    stops it at the timeout (plus its grace), wherever the time goes."""
    p = tmp_path / "many.toml"
    p.write_text(_many_threads())
    t = time.monotonic()
    r = subprocess.run([*RSEQCHECK, "verify", str(p), "--timeout", "1", "--engine", engine, "--out",
                        str(tmp_path / "cx")], capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t
    assert r.returncode == 3, r.stderr
    assert took < 10, took
    assert f"??   {p}: unknown: timeout after 1 s" in r.stdout
    no_traceback(r.stdout, r.stderr)


def test_spec_too_large_to_build_is_refused_with_what_to_reduce(tmp_path: Path) -> None:
    p = tmp_path / "huge.toml"
    p.write_text(_many_threads(400))
    code, out, err = run("verify", str(p))
    assert code == 2
    assert err == (f"{p}:11: spec too large to build: 400 threads x 3 contexts each (1 + max_nesting 2) "
                   "x 2402 instructions in 401 code blocks = 2,882,400, more than 60,000; "
                   "reduce the number of threads, max_nesting or the code\n")


BIG = (ROOT / "tests/test_cli.py").read_text().split('BIG = """\\\n', 1)[1].split('\n"""', 1)[0].replace(
    '\\"\\"\\"', '"""')


def test_max_states_stops_early_with_statistics(tmp_path: Path) -> None:
    p = tmp_path / "big.toml"
    p.write_text(BIG)
    code, out, err = run("verify", str(p), "--max-states", "5000", "--format", "json", "--out", str(tmp_path / "cx"))
    doc = json.loads(out)
    assert code == doc["exit_status"] == 3
    r = doc["results"][0]
    assert r["verdict"] == "unknown" and r["reason"].startswith("state limit 5000")
    assert 5000 <= r["states"] <= 5001


def test_max_memory_stops_early_with_exit_3(tmp_path: Path) -> None:
    p = tmp_path / "big.toml"
    p.write_text(BIG)
    t = time.monotonic()
    code, out, err = run("verify", str(p), "--max-memory", "1M", "--out", str(tmp_path / "cx"))
    assert code == 3 and time.monotonic() - t < 10
    assert out.startswith(f"??   {p}: unknown: memory limit of 1 MiB reached (explored to depth ")
    assert run("verify", str(p), "--max-memory", "lots")[0] == 2


def test_max_memory_below_what_the_process_holds_stops_a_short_search(tmp_path: Path) -> None:
    """The watchdog looks at once: a 2-state search used to finish before
    its first look, 50 ms in, and say 'holds' under --max-memory 1M."""
    spec = str(ROOT / "specs/seed000/rseq_clear_linux618.toml")
    for _ in range(3):
        code, out, _ = run("verify", spec, "--max-memory", "1M", "--out", str(tmp_path / "cx"))
        assert code == 3 and "unknown: memory limit of 1 MiB reached" in out


def test_out_of_memory_under_rlimit_exits_3_with_statistics(tmp_path: Path) -> None:
    """The issue: under `prlimit --as=1G` a large search ended with exit 2."""
    p = tmp_path / "big.toml"
    p.write_text(BIG)
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (700 << 20, 700 << 20))

    r = subprocess.run([*RSEQCHECK, "verify", str(p), "--no-por", "--out", str(tmp_path / "cx")],
                       capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert r.returncode == 3, (r.stdout, r.stderr)
    m = re.match(rf"\?\?   {re.escape(str(p))}: unknown: out of memory \(explored to depth (\d+)\) "
                 r"\(expected holds\); ([\d,]+) states", r.stdout)
    assert m and int(m.group(2).replace(",", "")) > 100_000, r.stdout
    no_traceback(r.stdout, r.stderr)


def test_memory_error_anywhere_is_a_resource_limit(tmp_path: Path, monkeypatch) -> None:
    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(cross, "check_spec", oom)
    p = tmp_path / "ok.toml"
    p.write_text(cs_spec())
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    assert code == 3 and out.startswith(f"??   {p}: unknown: out of memory")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_timeout_must_be_a_positive_finite_number(value: str) -> None:
    code, out, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--timeout", value)
    assert code == 2 and "Invalid value for '--timeout'" in err


def test_max_counterexamples_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    p = tmp_path / "big.toml"
    p.write_text(BIG.replace('expect = "holds"', 'expect = "violation"').replace(
        '"rseq-cs-atomic"', '"no-syscall-in-rseq-cs"'))
    t = time.monotonic()
    code, out, err = run("verify", str(p), "--max-counterexamples", "100000", "--timeout", "2",
                         "--out", str(tmp_path / "cx"))
    assert time.monotonic() - t < 8
    assert code in (0, 1, 3)
    no_traceback(out, err)


# --------------------------------------------- 3. errors that are not verdicts


def test_unwritable_out_exits_4_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, out, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--out", str(tmp_path / "file/cx"))
    assert code == 4
    assert err == f"rseqcheck: error: {tmp_path / 'file'}: --out: not a folder\n"
    no_traceback(out, err)


@pytest.mark.parametrize("where,msg", [("dir", "--junit is a folder"), ("file/x.xml", "--junit: not a folder")])
def test_unwritable_junit_exits_4_with_one_line(tmp_path: Path, where: str, msg: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    code, out, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--out", str(tmp_path / "cx"),
                         "--junit", str(tmp_path / where))
    assert code == 4 and err.endswith(f"{msg}\n") and len(err.splitlines()) == 1, err


def test_output_error_while_saving_exits_4_after_the_verdicts(tmp_path: Path, monkeypatch) -> None:
    def fail(o, folder, stem=None):
        raise OSError(28, "No space left on device", str(folder / "unprotected.txt"))

    monkeypatch.setattr("rseqcheck.checker.parallel.save_counterexample", fail)
    code, out, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--out", str(tmp_path / "cx"))
    assert code == 4
    assert "violation of next-syscall-atomic" in out
    assert err == (f"rseqcheck: error: {tmp_path / 'cx' / 'unprotected.txt'}: cannot write the counterexample: "
                   "No space left on device\n")


OUTCOME_SPEC = '''\
[spec]
title = "outcomes"
preset = "linux-6.18"
expect = "holds"

[thread.T0]
code = """
  store x, 1
  exit
"""

[outcomes]
exists = "end == exit && y == 1"

[check]
properties = ["no-unexpected-kill"]
depth = 10
'''


@pytest.mark.parametrize("engine", ["explicit", "bmc", "induction", "all"])
def test_unknown_variable_in_outcomes_is_a_spec_error_at_its_line(tmp_path: Path, engine: str) -> None:
    p = tmp_path / "o.toml"
    p.write_text(OUTCOME_SPEC)
    code, out, err = run("verify", str(p), "--engine", engine)
    assert code == 2
    assert err == (f"{p}:13: [outcomes] exists: unknown variable 'y' "
                   "(user variables: x; also end, exit, stuck, SIGx)\n")


def test_model_error_names_the_line_of_its_instruction(tmp_path: Path) -> None:
    p = tmp_path / "ok.toml"
    p.write_text(cs_spec())
    spec = load_spec(p)
    e = ModelError("action 'rseq_cs cs1' assigns T0.x = 9, outside its range 0..1")
    assert model_error(str(p), e, spec) == f"{p}:8: model error: {e}"
    assert model_error(str(p), ModelError("other"), spec) == f"{p}:6: model error: other"


# --------------------------------------------------------- 4. smaller defects


def test_ctrl_c_under_engine_all_stops_the_run(tmp_path: Path, monkeypatch) -> None:
    """The issue: Ctrl-C landing in bmc under --engine all was swallowed
    (the engine returned "interrupted") and the run went on to exit 0."""
    def interrupted_bmc(system, bound, **kw):
        return SearchResult("unknown", "bmc", Stats(), bound, reason="interrupted")

    monkeypatch.setattr(cross.symbolic, "bmc", interrupted_bmc)
    p = tmp_path / "ok.toml"
    p.write_text(cs_spec())
    code, out, err = run("verify", str(p), str(p), "--engine", "all", "--out", str(tmp_path / "cx"))
    assert code == 3
    assert err == f"interrupted: 2 of 2 specs not checked\n  not checked: {p}\n  not checked: {p}\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_a_summary_junit_and_no_tmp_files(tmp_path: Path, sig: int) -> None:
    (tmp_path / "big.toml").write_text(BIG)
    (tmp_path / "a.toml").write_text(cs_spec())
    out_dir = tmp_path / "cx"
    proc = subprocess.Popen([*RSEQCHECK, "verify", "a.toml", "big.toml", "--out", str(out_dir),
                             "--junit", "r.xml"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    lines = [x for x in out.splitlines() if "warning[" not in x]  # a.toml: its abort label is never reached
    assert lines[0].startswith("ok   a.toml: holds") and lines[1].startswith("??   big.toml: unknown: interrupted")
    assert lines[-1] == "1 of 2 specs as expected; 1 with warnings"
    assert err.splitlines()[-1] == "interrupted: 0 of 2 specs not checked"
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert (root.get("tests"), root.get("errors")) == ("2", "1")
    assert not list(tmp_path.rglob("*.tmp"))
    no_traceback(out, err)


def test_stale_tmp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(["true"], check=False)
    p = subprocess.Popen(["true"])
    p.wait()
    gone = p.pid
    del dead
    cx = tmp_path / "cx"
    cx.mkdir()
    (cx / f".x.json.{gone}.abcd1234.tmp").write_text("{")
    mine = cx / f".x.json.{os.getpid()}.abcd1234.tmp"
    mine.write_text("{")
    old = cx / ".y.json.zzzz9999.tmp"  # an old run's, before the pid was recorded
    old.write_text("{")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    young = cx / ".z.json.yyyy8888.tmp"
    young.write_text("{")
    removed = remove_stale_tmp(cx)
    assert sorted(Path(r).name for r in removed) == sorted([f".x.json.{gone}.abcd1234.tmp", old.name])
    assert mine.exists() and young.exists()


@pytest.mark.parametrize("what", ["fifo", "devzero", "large", "dir_as_file"])
def test_spec_must_be_a_regular_file_of_bounded_size(tmp_path: Path, what: str) -> None:
    p = tmp_path / "s.toml"
    if what == "fifo":
        os.mkfifo(p)
        msg = "not a regular file (a FIFO)"
    elif what == "devzero":
        p.symlink_to("/dev/zero")
        msg = "not a regular file (a device)"
    elif what == "large":
        p.write_text("# " + "x" * (1 << 20) + "\n")
        msg = f"too large ({(1 << 20) + 3:,} bytes; at most {1 << 20:,})"
    else:
        (tmp_path / "d").mkdir()
        p = tmp_path / "d"
        code, out, err = run("replay", str(ROOT / "tests/golden/unprotected.json"), "--spec", str(p))
        assert code == 2
        return
    t = time.monotonic()
    code, out, err = run("verify", str(p))
    assert time.monotonic() - t < 10
    assert code == 2 and err == f"{p}: {msg}\n"


def test_symlink_loop_is_not_reported_as_missing(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.symlink_to(b)
    b.symlink_to(a)
    code, out, err = run("verify", str(a))
    assert code == 2 and err.endswith(f"{a}: a symbolic link loop\n")


def test_unreadable_sub_folder_is_an_error(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.toml").write_text(cs_spec())
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "b.toml").write_text(cs_spec())
    hidden.chmod(0)
    try:
        if os.access(hidden, os.R_OK):  # root reads anything: simulate the refusal os.walk reports
            real = os.scandir

            def scandir(path="."):
                if Path(path) == hidden:
                    raise PermissionError(13, "Permission denied", str(hidden))
                return real(path)

            monkeypatch.setattr(os, "scandir", scandir)
        code, out, err = run("verify", str(tmp_path))
    finally:
        hidden.chmod(0o755)
    assert code == 2 and err.endswith(f"{hidden}: cannot read the folder: Permission denied\n"), err


def test_control_character_in_a_spec_file_name_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "a\x1b[2Jb.toml"
    p.write_text(cs_spec())
    code, out, err = run("verify", str(tmp_path))
    assert code == 2 and "\x1b" not in err and "the file name contains a control character" in err


def test_sud_off_without_sud_on_builds_and_holds(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text(cs_spec().replace("begin: nop", "begin: nop\n       sud_off").replace("end:   exit", "end:   nop\n exit"))
    text = p.read_text().replace('"rseq-cs-atomic"', '"sud-no-escape"')
    p.write_text(text)
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "cx"))
    assert code == 1 or code == 0, (out, err)  # a verdict, not a crash
    assert out.startswith(("ok   ", "FAIL ")) and "sud-no-escape is vacuous" in out
    no_traceback(out, err)


MALFORMED = {
    "deep": "[" * 100000 + "]" * 100000,
    "deep_ok_json": json.dumps({"#meta": {"a": [[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]}}),
    "label_not_string": None,
    "var_is_list": None,
    "title_escape": None,
    "rules_not_dict": None,
    "surrogate": None,
    "not_utf8": b"\xff\xfe{}",
    "empty": "",
}


def _malformed(name: str) -> bytes:
    v = MALFORMED[name]
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode()
    t = json.loads((ROOT / "tests/golden/unprotected.json").read_text())
    if name == "label_not_string":
        t["states"][1]["#meta"]["action"] = {"a": 1}
    elif name == "var_is_list":
        t["states"][0][t["vars"][0]] = [1, 2]
    elif name == "title_escape":
        t["#meta"]["title"] = "\x1b]0;pwned\x07\x1b[2J"
    elif name == "rules_not_dict":
        t["#meta"]["rules"] = ["a"]
    elif name == "surrogate":
        return json.dumps(t).replace('"title": "', '"title": "\\ud800').encode()
    return json.dumps(t).encode()


@pytest.mark.parametrize("name", list(MALFORMED))
@pytest.mark.parametrize("cmd", ["show", "replay", "show-dot"])
def test_malformed_trace_is_one_line_exit_2(tmp_path: Path, monkeypatch, name: str, cmd: str) -> None:
    monkeypatch.chdir(ROOT)
    p = tmp_path / "t.json"
    p.write_bytes(_malformed(name))
    args = ["show", str(p), "--format", "dot"] if cmd == "show-dot" else [cmd, str(p)]
    code, out, err = run(*args)
    assert code == 2, (out, err)
    assert err.startswith(f"{p}: ") and len(err.splitlines()) == 1, err
    assert "\x1b" not in out + err
    no_traceback(out, err)


def test_networkx_constructor_keys_in_a_trace_are_plain_header_fields(tmp_path: Path, monkeypatch) -> None:
    """`incoming_graph_data` in #meta went to nx.DiGraph(**meta) as its
    constructor argument: a traceback.  Now it is one more header field."""
    monkeypatch.chdir(ROOT)
    t = json.loads((ROOT / "tests/golden/unprotected.json").read_text())
    t["#meta"]["incoming_graph_data"] = "x"
    p = tmp_path / "t.json"
    p.write_text(json.dumps(t))
    code, out, err = run("show", str(p))
    assert code == 0 and out.startswith("rseqcheck 0.1.0: violation of next-syscall-atomic")
    assert run("replay", str(p))[0] == 0


def test_terminal_escape_in_a_title_never_reaches_the_terminal(tmp_path: Path) -> None:
    p = tmp_path / "t.toml"
    p.write_text(cs_spec(title='"\\u001b]0;owned\\u0007"'))
    code, out, err = run("verify", str(p))
    assert code == 2 and "\x1b" not in out + err and "U+001B" in err


def test_cli_help_documents_exit_status_4() -> None:
    code, out, _ = run("verify", "--help")
    assert code == 0 and "4 an output error" in " ".join(out.split())


def test_replay_of_a_verified_counterexample_still_works(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run("verify", "specs/seed000/unprotected.toml", "--out", str(tmp_path))
    assert code == 0
    assert run("replay", str(tmp_path / "unprotected.json"))[0] == 0
    assert verify_mod.ENGINES  # the module the CLI uses


# ------------------------------------------------- found by tests/test_fuzz.py


@pytest.mark.parametrize("line,msg", [
    ("clone T1", ":10: clone T1: no [thread.T1] in the spec"),
    ("add tls.refcnt, 1", ':10: tls.refcnt is changed by add: declare its range in [variables], e.g. "tls.refcnt" = [0, 3]'),
])
def test_emit_c_reports_the_models_spec_errors_instead_of_crashing(tmp_path: Path, line: str, msg: str) -> None:
    """Fuzzer finds (seed 3): `run --emit-c` skipped the model's checks and
    the generator crashed (KeyError, ValueError) on what the builder refuses."""
    p = tmp_path / "c.toml"
    p.write_text(cs_spec().replace("begin: nop", f"begin: nop\n       {line}"))
    c = tmp_path / "c.c"
    code, out, err = run("run", str(p), "--emit-c", str(c))
    assert code == 2 and err == f"{p}{msg}\n"
    assert not c.exists()


def test_emit_c_to_an_unwritable_place_is_an_output_error(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text(cs_spec())
    (tmp_path / "file").write_text("")
    code, out, err = run("run", str(p), "--emit-c", str(tmp_path / "file" / "c.c"))
    assert code == 4 and err == f"rseqcheck: error: {tmp_path / 'file' / 'c.c'}: cannot write: Not a directory\n"


def test_escape_codes_in_a_key_are_shown_not_sent_to_the_terminal(tmp_path: Path) -> None:
    """`[thread.X] must be a table` named the raw key before validating it."""
    p = tmp_path / "k.toml"
    p.write_text(cs_spec() + '\n[handler]\n"\\u001b[2J" = 5\n')
    code, out, err = run("verify", str(p))
    assert code == 2 and err == f"{p}:24: [handler.\\x1b[2J] must be a table\n"


def test_junit_that_fails_after_the_checks_is_exit_4_in_the_json_too(tmp_path: Path, monkeypatch) -> None:
    def fail(path, text):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr("rseqcheck.checker.cli.app.write_atomic", fail)
    code, out, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--out", str(tmp_path / "cx"),
                         "--junit", str(tmp_path / "r.xml"), "--format", "json")
    doc = json.loads(out)
    assert code == doc["exit_status"] == 4
    assert doc["output_errors"] == [f"{tmp_path / 'r.xml'}: cannot write the JUnit file: Read-only file system"]
    assert err == "rseqcheck: error: " + doc["output_errors"][0] + "\n"


@pytest.mark.parametrize("name", ["..toml", "...toml", "-x.toml"])
def test_counterexample_files_of_odd_spec_names_stay_in_out(tmp_path: Path, monkeypatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("s").mkdir()
    Path("s", name).write_text((ROOT / "specs/seed000/unprotected.toml").read_text())
    code, out, err = run("verify", f"s/{name}", f"s/{name}", "--out", "cx")
    assert code == 0, (out, err)
    stem = name[: -len(".toml")]
    assert sorted(os.listdir("cx")) == sorted([f"{stem}.json", f"{stem}.txt"])  # named twice: one name
    assert sorted(os.listdir(".")) == ["cx", "s"]


def test_a_fifo_as_a_trace_is_refused_without_blocking(tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    os.mkfifo(p)
    for cmd in ("show", "replay"):
        code, out, err = run(cmd, str(p))
        assert code == 2 and err == f"{p}: not a regular file (a FIFO)\n"


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_outcomes_timeout_must_be_finite(value: str) -> None:
    code, out, err = run("outcomes", str(ROOT / "specs/seed000/unprotected.toml"), "--timeout", value)
    assert code == 2 and "Invalid value for '--timeout'" in err


def test_ctrl_c_under_engine_all_in_a_real_process_exits_3_promptly(tmp_path: Path) -> None:
    (tmp_path / "big.toml").write_text(BIG)
    proc = subprocess.Popen([*RSEQCHECK, "verify", "big.toml", "--engine", "all", "--out", "cx"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even if ours is ignored
    time.sleep(3)
    t = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert time.monotonic() - t < 5
    assert out.startswith("??   big.toml: unknown: interrupted")
    no_traceback(out, err)


def test_name_patterns_accept_the_data_machines_operands_and_nothing_else() -> None:
    """main's data machine (registers, per-CPU arrays, rseq area fields)
    uses these operand forms; the patterns must keep accepting them."""
    from rseqcheck.model.names import DECLARED, IDENT, OPERAND

    for ok in ("x", "tls.x", "%r0", "%r15", "rseq.cpu_id", "counts[%r1]", "counts[2]", "_" + "a" * 63):
        assert OPERAND.match(ok), ok
    for bad in ("x\n", "a b", "x[cpu]\n", "%r1;", "a" * 65, "x]", "rseq.cpu_id\n", "counts[%r1", "tls.x[1]x"):
        assert not OPERAND.match(bad), bad
    assert DECLARED.match("counts[cpu]") and DECLARED.match("tls.refcnt") and not DECLARED.match("tls.c[cpu]")
    assert IDENT.match("T0") and not IDENT.match("T0\n") and not IDENT.match("0T")


def test_watchdog_leaves_no_handler_or_thread_behind() -> None:
    import threading

    from rseqcheck.checker.limits import LimitHit, Limits, Watchdog

    before = signal.getsignal(signal.SIGALRM)
    n = threading.active_count()
    with pytest.raises(LimitHit, match="timeout after 0.05 s"):
        with Watchdog(Limits(timeout=0.05)):
            while True:  # pure Python: stopped by the watchdog's SIGALRM
                pass
    with Watchdog(Limits(timeout=30)):
        pass  # disarmed on the way out: no LimitHit later
    time.sleep(0.1)
    assert signal.getsignal(signal.SIGALRM) == before and threading.active_count() == n


def test_hostile_but_legitimate_free_text_round_trips_through_every_output(tmp_path: Path, monkeypatch) -> None:
    """Printable text with every markup character: each writer escapes it
    and each reader gets it back unchanged."""
    monkeypatch.chdir(tmp_path)
    title = '<x a="1"> & ]]> \'q\' "dq" \\ */ /* ??/ #include — “naïve” 日本 %s'
    text = (ROOT / "specs/seed000/unprotected.toml").read_text()
    text = re.sub(r'(?m)^title\s*=.*$', lambda m: "title = " + json.dumps(title, ensure_ascii=False), text, count=1)
    Path("u.toml").write_text(text)
    code, out, err = run("verify", "u.toml", "--out", "cx", "--junit", "r.xml", "--format", "json")
    assert code == 0, err
    assert json.loads(out)["results"][0]["title"] == title
    ET.parse("r.xml")
    assert json.loads(Path("cx/u.json").read_text())["#meta"]["title"] == title
    code, gml, _ = run("show", "cx/u.json", "--format", "graphml")
    Path("u.graphml").write_text(gml)
    assert nx.read_graphml("u.graphml").graph["title"] == title
    code, dot, _ = run("show", "cx/u.json", "--format", "dot")
    assert code == 0 and all(line.rstrip().endswith((";", "{", "}")) for line in dot.splitlines())
    code, txt, _ = run("show", "cx/u.json")
    assert code == 0 and "“naïve”" in txt
    assert run("replay", "cx/u.json")[0] == 0


def test_outcomes_timeout_covers_building_and_compiling(tmp_path: Path) -> None:
    p = tmp_path / "many.toml"
    p.write_text(_many_threads())
    t = time.monotonic()
    code, out, err = run("outcomes", str(p), "--timeout", "1")
    assert time.monotonic() - t < 10
    assert code == 3 and err == f"{p}: timeout after 1 s before the outcomes were listed\n"


def test_out_is_not_created_or_required_when_nothing_is_saved(tmp_path: Path, monkeypatch) -> None:
    """A read-only checkout whose specs all hold must still verify: --out is
    only needed for a counterexample (no up-front writability demand)."""
    monkeypatch.setattr(os, "access", lambda *a, **k: False)  # as if nothing were writable
    p = tmp_path / "ok.toml"
    p.write_text(cs_spec())
    code, out, err = run("verify", str(p), "--out", str(tmp_path / "a" / "b"))
    assert code == 0, err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("value", ["2147483648", "1", "-22"])
def test_rseq_ret_compared_with_a_number_it_never_holds_is_a_spec_error(tmp_path: Path, value: str) -> None:
    """Fuzzer find (seed 2026, 3 of 10,000 mutants): `bne rseq_ret, 2147483648, L`
    crashed the builder (ValueError: tuple.index), an internal error."""
    p = tmp_path / "r.toml"
    p.write_text(cs_spec().replace("begin: nop", f"begin: nop\n       rseq_register\n       bne rseq_ret, {value}, retry"))
    for engine in ("explicit", "bmc"):
        code, out, err = run("verify", str(p), "--engine", engine, "--out", str(tmp_path / "cx"))
        assert code == 2
        assert err == f"{p}:11: rseq_ret is compared with {value}; it holds 0, EINVAL, EPERM, EBUSY, EFAULT, ENOSYS or EACCES\n"


def test_a_limit_that_lands_in_a_finalizer_is_sent_again_silently(capfd) -> None:
    """Fuzzer find (seed 2026): the SIGALRM landed in a Z3 object's __del__,
    where Python drops exceptions (printing "Exception ignored ...
    Traceback"); the timeout was lost.  Now the watchdog sends it again and
    says nothing."""
    from rseqcheck.checker.limits import LimitHit, Limits, Watchdog

    class Slow:
        def __del__(self):
            t = time.monotonic()
            while time.monotonic() - t < 0.8:  # the watchdog fires (at 0.3 s) while this runs
                pass

    t = time.monotonic()
    with pytest.raises(LimitHit, match="timeout after 0.05 s"):
        with Watchdog(Limits(timeout=0.05)):
            Slow()  # dropped at once: __del__ runs here
            while True:
                pass
    assert time.monotonic() - t < 3
    assert "Exception ignored" not in capfd.readouterr().err
