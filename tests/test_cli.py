"""The command line as CI and reviewers use it: exit statuses (0 as
expected, 1 a verdict differs, 2 spec or usage error, 3 resource limit),
Ctrl-C, atomic counterexample files, JUnit XML, JSON results, the summary
table, `show` in every format, and `replay` of saved traces."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest
from click.testing import CliRunner
from rseqcheck.checker import __version__
from rseqcheck.checker import verify as verify_mod
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.outputs.trace import render
from rseqcheck.checker.verify import Outcome, check_spec, save_counterexample

ROOT = Path(__file__).resolve().parent.parent

HOLDS = """\
[spec]
title  = "A getpid, no signals: nothing can go wrong"
preset = "linux-6.18"
expect = "holds"

[thread.T0]
code = \"\"\"
        syscall getpid
        exit
\"\"\"

[check]
properties = ["no-unexpected-kill"]
depth = 20
"""

VIOLATION = """\
[spec]
title  = "Next-syscall descriptor with no protection"
preset = "linux-6.18"
expect = "violation"

[environment]
signals     = ["SIGUSR1"]
max_signals = 1

[thread.T0]
code = \"\"\"
        set_desc  TRACE
        syscall   write @traced
        exit
\"\"\"

[handler.SIGUSR1]
flags = ["SA_RESTART"]
code  = \"\"\"
        syscall getpid
        sigreturn
\"\"\"

[check]
properties = ["no-unexpected-kill", "next-syscall-atomic"]
depth = 30
"""

# Big enough that no test run finishes it: two threads, two handlers,
# preemption and migration, 10000 steps deep.
BIG = """\
[spec]
title  = "big state space, for resource-limit tests"
preset = "linux-6.18"
expect = "holds"

[environment]
signals     = ["SIGUSR1", "SIGUSR2"]
max_signals = 4
preemption  = true
migration   = true

[thread.T0]
code = \"\"\"
retry:  rseq_cs   cs1
begin:  nop
        nop
        nop
end:    nop
        jmp       retry
abort:  jmp       retry
\"\"\"

[thread.T1]
code = \"\"\"
again:  syscall   getpid
        nop
        jmp       again
\"\"\"

[rseq_cs.cs1]
start = "begin"
post_commit = "end"
abort = "abort"

[handler.SIGUSR1]
code = \"\"\"
        syscall getpid
        sigreturn
\"\"\"

[handler.SIGUSR2]
code = \"\"\"
        nop
        sigreturn
\"\"\"

[check]
properties = ["rseq-cs-atomic"]
depth = 10000
"""


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def specs(tmp_path: Path, monkeypatch) -> Path:
    """A folder with the two small specs, made the current directory so
    that the paths saved in traces are relative, as in a checkout."""
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "specs"
    d.mkdir()
    (d / "holds.toml").write_text(HOLDS)
    (d / "violation.toml").write_text(VIOLATION)
    return d


# ------------------------------------------------------------- exit status


def test_exit_0_when_every_verdict_is_expected(specs: Path) -> None:
    code, out, err = run("verify", "specs", "--out", "cx")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("ok   specs/holds.toml: holds (state space exhausted at depth ")
    assert lines[1].startswith("ok   specs/violation.toml: violation of next-syscall-atomic at depth 8 (expected violation); ")
    assert lines[2] == "     counterexample: cx/violation.txt, cx/violation.json"
    assert lines[-1] == "2 of 2 specs as expected"
    assert sorted(p.name for p in Path("cx").iterdir()) == ["violation.json", "violation.txt"]


def test_summary_table_when_several_specs(specs: Path) -> None:
    _, out, _ = run("verify", "specs", "--out", "cx")
    lines = out.splitlines()
    head = lines.index(next(x for x in lines if x.startswith("spec ")))
    assert lines[head].split() == ["spec", "property", "expected", "verdict", "states", "time"]
    rows = [x.split() for x in lines[head + 1 : -1]]
    assert rows[0][:4] == ["specs/holds.toml", "no-unexpected-kill", "holds", "holds"]
    assert rows[0][-1] == "s" and rows[0][-3].replace(",", "").isdigit()  # states, "0.00 s"
    assert rows[1][:4] == ["specs/violation.toml", "no-unexpected-kill", "violation", "not"]  # not reached
    assert rows[2][:3] == ["next-syscall-atomic", "violation", "violation"]
    # one spec: no table
    _, out1, _ = run("verify", "specs/holds.toml")
    assert not any(x.startswith("spec ") for x in out1.splitlines())


def test_exit_1_when_a_verdict_differs(specs: Path) -> None:
    (specs / "violation.toml").write_text(VIOLATION.replace('expect = "violation"', 'expect = "holds"'))
    code, out, _ = run("verify", "specs", "--out", "cx")
    assert code == 1
    assert "FAIL specs/violation.toml: violation of next-syscall-atomic at depth 8 (expected holds)" in out
    assert "specs/violation.toml  no-unexpected-kill" in out and "violation  <-" in out
    assert out.splitlines()[-1] == "1 of 2 specs as expected"
    assert (Path("cx") / "violation.json").exists()


def test_exit_1_when_holds_but_violation_expected(specs: Path) -> None:
    (specs / "holds.toml").write_text(HOLDS.replace('expect = "holds"', 'expect = "violation"'))
    code, out, _ = run("verify", "specs/holds.toml")
    assert code == 1 and out.startswith("FAIL specs/holds.toml: holds")


def test_exit_1_for_a_violation_without_expect(specs: Path) -> None:
    (specs / "violation.toml").write_text(VIOLATION.replace('expect = "violation"\n', ""))
    code, out, _ = run("verify", "specs/violation.toml", "--out", "cx")
    assert code == 1 and out.startswith("FAIL specs/violation.toml: violation of next-syscall-atomic")


@pytest.mark.parametrize(
    "args, message",
    [
        (["verify", "nowhere.toml"], "nowhere.toml: no such file or folder"),
        (["verify", "empty"], "no spec files (*.toml) found in empty"),
        (["verify"], "Missing argument"),
        (["verify", "specs", "--depth", "0"], "Invalid value for '--depth'"),
        (["verify", "specs", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["show", "nowhere.json"], "does not exist"),
        (["replay", "nowhere.json"], "nowhere.json: no such file or folder"),
    ],
)
def test_exit_2_for_usage_errors(specs: Path, args: list[str], message: str) -> None:
    Path("empty").mkdir()
    code, out, err = run(*args)
    assert code == 2 and message in err and "Traceback" not in err


def test_exit_2_beats_1_and_the_rest_is_still_checked(specs: Path) -> None:
    (specs / "bad.toml").write_text(HOLDS.replace("syscall getpid", "syscall nosuch"))
    (specs / "violation.toml").write_text(VIOLATION.replace('expect = "violation"', 'expect = "holds"'))
    code, out, err = run("verify", "specs", "--out", "cx")
    assert code == 2
    assert err.startswith("specs/bad.toml:8: unknown syscall 'nosuch'")
    assert "ok   specs/holds.toml" in out and "FAIL specs/violation.toml" in out
    assert out.splitlines()[-1] == "1 of 3 specs as expected"


def test_exit_3_on_timeout_with_statistics(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.toml").write_text(BIG)
    code, out, _ = run("verify", "big.toml", "--timeout", "0.3")
    assert code == 3
    first = out.splitlines()[0]
    assert first.startswith("??   big.toml: unknown: timeout after 0.3 s (explored to depth ")
    states = int(first.split("); ")[1].split(" states")[0].replace(",", ""))
    assert states > 1000
    assert out.splitlines()[-1] == "0 of 1 specs as expected"


def test_exit_3_timeout_json_has_statistics(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.toml").write_text(BIG)
    code, out, _ = run("verify", "big.toml", "--timeout", "0.3", "--format", "json")
    doc = json.loads(out)
    assert code == doc["exit_status"] == 3
    r = doc["results"][0]
    assert r["verdict"] == "unknown" and r["reason"] == "timeout after 0.3 s"
    assert r["states"] > 1000 and r["seconds"] >= 0.3 and r["depth"] > 0


def test_ctrl_c_in_a_real_process(tmp_path: Path) -> None:
    """SIGINT mid-search: the statistics so far, exit 3, no stray files."""
    (tmp_path / "big.toml").write_text(BIG)
    out_dir = tmp_path / "cx"
    master, slave = pty.openpty()  # a terminal on stderr, so the progress line shows
    p = subprocess.Popen(
        [sys.executable, "-m", "rseqcheck.checker.cli", "verify", str(tmp_path / "big.toml"), "--out", str(out_dir)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # even if our SIGINT is ignored
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"states/s" not in seen and time.monotonic() < deadline:  # the search is running
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)
        assert b"states/s" in seen, seen
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
        try:
            while select.select([master], [], [], 0.2)[0]:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                seen += chunk
        except OSError:  # EIO once the child has gone
            pass
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    assert p.returncode == 3
    assert out.startswith(f"??   {tmp_path / 'big.toml'}: unknown: interrupted (explored to depth ")
    assert " states, " in out.splitlines()[0]
    assert b"interrupted: 0 of 1 specs not checked" in seen
    assert b"Traceback" not in seen
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_ctrl_c_between_specs_reports_what_was_done(specs: Path, monkeypatch) -> None:
    calls = []

    def fake(path, **kw):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return check_spec(path, **kw)

    monkeypatch.setattr("rseqcheck.checker.cross.check_spec", fake)
    # one worker: the fake counts its calls in this process
    code, out, err = run("verify", "specs", "--out", "cx", "--junit", "j.xml", "--jobs", "1")
    assert code == 3
    assert out.startswith("ok   specs/holds.toml: holds")
    assert out.splitlines()[-1] == "1 of 1 specs as expected"
    assert "interrupted: 1 of 2 specs not checked" in err
    root = ET.parse("j.xml").getroot()
    assert (root.get("tests"), root.get("errors")) == ("2", "1")  # the spec not checked is an error
    err = root.find("testsuite[@name='specs/violation.toml']/testcase/error")
    assert (err.get("type"), err.get("message")) == ("not-checked", "not checked: interrupted (Ctrl-C, SIGTERM or SIGHUP)")


# --------------------------------------------------- atomic counterexamples


def _violation_outcome(specs: Path) -> Outcome:
    o = check_spec("specs/violation.toml")
    assert o.graph is not None
    return o


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_interrupted_save_leaves_no_partial_file(specs: Path, monkeypatch, fail_at: str) -> None:
    o = _violation_outcome(specs)
    folder = Path("cx")
    folder.mkdir()
    (folder / "violation.txt").write_text("old txt\n")
    (folder / "violation.json").write_text("old json\n")
    real = {"fsync": os.fsync, "replace": os.replace}[fail_at]
    count = {"n": 0}

    def second_call_interrupted(*a):
        count["n"] += 1
        if count["n"] == 2:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(verify_mod.os, fail_at, second_call_interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_counterexample(o, folder)
    monkeypatch.setattr(verify_mod.os, fail_at, real)
    assert sorted(p.name for p in folder.iterdir()) == ["violation.json", "violation.txt"]  # no *.tmp
    json_text = (folder / "violation.json").read_text()
    assert json_text == "old json\n"  # interrupted before its rename: untouched
    txt = (folder / "violation.txt").read_text()
    if fail_at == "fsync":  # the .txt temporary was complete, but nothing was renamed yet
        assert txt == "old txt\n"
    else:  # the .txt rename happened, whole
        assert txt.startswith("rseqcheck ") and txt == render(o.graph, "text")
    save_counterexample(o, folder)
    assert json.loads((folder / "violation.json").read_text())["#meta"]["spec"] == "specs/violation.toml"


def test_saved_files_are_readable_by_others(specs: Path) -> None:
    o = _violation_outcome(specs)
    for f in save_counterexample(o, Path("cx")):
        assert os.stat(f).st_mode & 0o044 == 0o044


# -------------------------------------------------------------- JUnit, JSON


def test_junit(specs: Path) -> None:
    (specs / "bad.toml").write_text("[spec]\npreset = 1\n")
    (specs / "wrong.toml").write_text(HOLDS.replace('expect = "holds"', 'expect = "violation"'))
    code, _, _ = run("verify", "specs", "--out", "cx", "--junit", "out/junit.xml")
    assert code == 2
    root = ET.parse("out/junit.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "1", "1")
    assert "skipped" not in root.attrib  # not in the schema's <testsuites>: per suite only
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert sum(int(s.get("skipped")) for s in suites.values()) == 1
    assert list(suites) == ["specs/bad.toml", "specs/holds.toml", "specs/violation.toml", "specs/wrong.toml"]
    props = {p.get("name"): p.get("value") for p in suites["specs/violation.toml"].find("properties")}
    assert props["tool"] == "rseqcheck" and props["tool_version"] == __version__
    assert props["preset"] == "linux-6.18" and props["expected"] == "violation" and props["verdict"] == "violation"
    assert len(props["spec_hash"]) == 12 and props["engine"] == "explicit"
    cases = {c.get("name"): c for c in suites["specs/violation.toml"].findall("testcase")}
    assert list(cases) == ["no-unexpected-kill", "next-syscall-atomic"]
    assert cases["no-unexpected-kill"].find("skipped") is not None
    assert list(cases["next-syscall-atomic"]) == []  # passed
    err = suites["specs/bad.toml"].find("testcase/error")
    assert err.get("type") == "spec-error" and err.get("message") == "specs/bad.toml:2: preset must be a string"
    fail = suites["specs/wrong.toml"].find("testcase/failure")
    assert fail.get("message").startswith("expected violation, got holds")
    assert suites["specs/wrong.toml"].find("testcase").get("classname") == "specs/wrong.toml"


def test_junit_resource_limit_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("big.toml").write_text(BIG)
    code, _, _ = run("verify", "big.toml", "--timeout", "0.2", "--junit", "j.xml")
    assert code == 3
    e = ET.parse("j.xml").getroot().find("testsuite/testcase/error")
    assert e.get("type") == "resource-limit" and "timeout after 0.2 s" in e.get("message")


def test_json_results_carry_everything(specs: Path) -> None:
    code, out, _ = run("verify", "specs", "--out", "cx", "--format", "json")
    doc = json.loads(out)
    assert code == doc["exit_status"] == 0
    assert (doc["tool"], doc["version"], doc["interrupted"], doc["not_checked"]) == ("rseqcheck", __version__, False, [])
    assert doc["summary"] == {"specs": 2, "as_expected": 2, "warnings": 0, "incomplete": 0}
    by = {r["spec"]: r for r in doc["results"]}
    v = by["specs/violation.toml"]
    for key in ("tool_version", "spec_hash", "preset", "rules", "states", "transitions", "seconds", "depth",
                "engine", "verdict", "expected", "as_expected", "property", "property_verdicts", "counterexample_files"):
        assert key in v, key
    assert (v["verdict"], v["expected"], v["as_expected"], v["property"]) == ("violation", "violation", True, "next-syscall-atomic")
    assert v["property_verdicts"] == {"no-unexpected-kill": "not reached", "next-syscall-atomic": "violation"}
    assert v["counterexample_files"] == ["cx/violation.txt", "cx/violation.json"]
    assert v["trace_steps"] == 8 and v["tool_version"] == __version__ and v["preset"] == "linux-6.18"
    assert by["specs/holds.toml"]["property_verdicts"] == {"no-unexpected-kill": "holds"}


# -------------------------------------------------------------------- show


def test_show_every_format(specs: Path) -> None:
    run("verify", "specs/violation.toml", "--out", "cx")
    code, text, _ = run("show", "cx/violation.json")
    assert code == 0 and text == Path("cx/violation.txt").read_text()
    code, js, _ = run("show", "cx/violation.json", "--format", "json")
    assert code == 0 and js == Path("cx/violation.json").read_text()
    code, dot, _ = run("show", "cx/violation.json", "--format", "dot")
    assert code == 0 and dot.startswith("digraph counterexample {") and dot.count(" -> ") == 8
    code, gml, _ = run("show", "cx/violation.json", "--format", "graphml")
    assert code == 0
    Path("w.graphml").write_text(gml)
    g = nx.read_graphml("w.graphml")
    assert g.number_of_nodes() == 9 and g.graph["specification"] == "next-syscall-atomic"


def test_show_rejects_what_is_not_a_trace(specs: Path) -> None:
    Path("x.json").write_text("{not json")
    code, _, err = run("show", "x.json")
    assert code == 2 and err.startswith("x.json: not JSON")
    Path("y.json").write_text('{"states": []}')
    code, _, err = run("show", "y.json")
    assert code == 2 and err.startswith("y.json: not an rseqcheck ITF trace")


# ------------------------------------------------------------------ replay


def _committed_traces() -> list[str]:
    try:
        r = subprocess.run(["git", "ls-files", "counterexamples/*.json"], cwd=ROOT, capture_output=True, text=True)
        if r.returncode == 0:
            return sorted(r.stdout.split())
    except OSError:
        pass
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "counterexamples").rglob("*.json"))


@pytest.mark.parametrize("trace", _committed_traces())
def test_replay_committed_counterexample(trace: str, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run("replay", trace)
    assert code == 0, out + err
    prop = json.loads(Path(trace).read_text())["#meta"]["property"]
    assert out.startswith(f"{trace}: replays: still reaches {prop} (")


@pytest.fixture
def saved(specs: Path) -> dict:
    code, _, _ = run("verify", "specs/violation.toml", "--out", "cx")
    assert code == 0
    return json.loads(Path("cx/violation.json").read_text())


def test_replay_fresh_trace(saved: dict) -> None:
    code, out, err = run("replay", "cx/violation.json")
    assert (code, err) == (0, "")
    assert out == "cx/violation.json: replays: still reaches next-syscall-atomic (8 steps)\n"


def test_replay_warns_when_the_spec_text_changed(saved: dict, specs: Path) -> None:
    (specs / "violation.toml").write_text("# a comment changes the hash, not the semantics\n" + VIOLATION)
    code, out, err = run("replay", "cx/violation.json")
    assert code == 0 and "replays: still reaches next-syscall-atomic" in out
    assert f"cx/violation.json: warning: specs/violation.toml changed since the trace was saved (sha256 {saved['#meta']['spec_hash']} then" in err


def test_replay_with_another_spec_says_so(saved: dict, specs: Path) -> None:
    (specs / "other.toml").write_text("# another spec\n" + VIOLATION)
    code, out, err = run("replay", "cx/violation.json", "--spec", "specs/other.toml")
    assert code == 0 and "replays" in out
    assert ("cx/violation.json: warning: specs/other.toml is not the spec the trace was saved from "
            f"(specs/violation.toml, sha256 {saved['#meta']['spec_hash']}; this one ") in err


def test_replay_step_no_longer_applies(saved: dict, specs: Path) -> None:
    # without SA_RESTART the handler is the same, but the trace's
    # labels around restart differ; simplest: make the handler do nothing.
    (specs / "violation.toml").write_text(VIOLATION.replace("        syscall getpid\n        sigreturn", "        nop\n        sigreturn"))
    code, out, err = run("replay", "cx/violation.json")
    assert code == 1
    step7 = saved["states"][7]["#meta"]
    assert out.splitlines()[0] == f"cx/violation.json: step 7 no longer applies: {step7['action']}"
    assert "warning: specs/violation.toml changed" in err


def test_replay_tampered_state(saved: dict) -> None:
    saved["states"][3]["T0.k"] = "DEAD"
    Path("t.json").write_text(json.dumps(saved))
    code, out, _ = run("replay", "t.json")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"t.json: step 3 no longer applies: {saved['states'][3]['#meta']['action']}"
    assert lines[1].startswith(f"  {saved['states'][3]['#meta']['actor']} can take it, but it now leads elsewhere: T0.k=")
    assert "(saved DEAD)" in lines[1]


def test_replay_tampered_label(saved: dict) -> None:
    saved["states"][1]["#meta"]["action"] = "set_desc  OTHER"
    Path("t.json").write_text(json.dumps(saved))
    code, out, _ = run("replay", "t.json")
    assert code == 1
    assert out.splitlines()[:2] == ["t.json: step 1 no longer applies: set_desc  OTHER",
                                    "  no enabled action of T0 has this label"]


def test_replay_end_no_longer_violates(saved: dict) -> None:
    saved["#meta"]["property"] = "no-unexpected-kill"
    Path("t.json").write_text(json.dumps(saved))
    code, out, _ = run("replay", "t.json")
    assert (code, out) == (1, "t.json: replays all 8 steps, but the last state no longer violates no-unexpected-kill\n")


def test_replay_spec_override_and_missing_spec(saved: dict, specs: Path) -> None:
    (specs / "violation.toml").rename("moved.toml")
    code, _, err = run("replay", "cx/violation.json")
    assert code == 2
    assert err.startswith("cx/violation.json: its spec specs/violation.toml is not here")
    assert "--spec PATH" in err
    code, out, _ = run("replay", "cx/violation.json", "--spec", "moved.toml")
    assert code == 0 and "still reaches next-syscall-atomic" in out


def test_replay_spec_error_is_exit_2(saved: dict, specs: Path) -> None:
    (specs / "violation.toml").write_text(VIOLATION.replace("set_desc  TRACE", "set_dsc  TRACE"))
    code, _, err = run("replay", "cx/violation.json")
    assert code == 2 and err.startswith("specs/violation.toml:12: unknown instruction 'set_dsc'")


OUTCOMES_SPEC = '''[spec]
title = "t"
preset = "linux-6.18"
expect = "holds"
[thread.T0]
code = """
        sud_on     none, none
        sud_select BLOCK
        syscall    getpid
        store      after, 1
none:   exit
"""
[handler.SIGSYS]
code = """
        store      h, 1
        sud_select ALLOW
        sigreturn
"""
[outcomes]
forall = "{cond}"
[check]
properties = ["no-unexpected-kill"]
depth = 40
'''


def test_verify_checks_outcomes(tmp_path: Path) -> None:
    # The dispatched getpid runs the handler (h = 1), then `after` is stored:
    # the only allowed outcome is exit with h = 1, after = 1.
    good = tmp_path / "good.toml"
    good.write_text(OUTCOMES_SPEC.format(cond="end == exit && h == 1 && after == 1"))
    bad = tmp_path / "bad.toml"
    bad.write_text(OUTCOMES_SPEC.format(cond="h == 0"))
    junit = tmp_path / "j.xml"
    r = CliRunner().invoke(main, ["verify", "--out", str(tmp_path / "o"), "--junit", str(junit), str(good), str(bad)])
    assert r.exit_code == 1, r.output
    assert "[outcomes] forall (end == exit && h == 1 && after == 1) holds: all 1 allowed outcomes satisfy it" in r.output
    assert "1 of 2 specs as expected" in r.output
    xml = junit.read_text()
    assert xml.count('type="outcomes"') == 1 and 'failures="1"' in xml
    r = CliRunner().invoke(main, ["verify", "--format", "json", "--out", str(tmp_path / "o"), str(bad)])
    rec = json.loads(r.output)["results"][0]
    assert rec["outcomes_check"]["holds"] is False
    assert rec["property_verdicts"] == {"no-unexpected-kill": "holds", "[outcomes]": "fails"}


def test_replay_many_traces_and_folders_in_one_process(tmp_path: Path, monkeypatch) -> None:
    """#14: CI replays every committed trace in one process; one trace that
    cannot start makes it exit 2, after the others are still replayed."""
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(main, ["replay", "counterexamples/"])
    n = len(list((ROOT / "counterexamples").rglob("*.json")))  # laid out like specs/: a folder each
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == f"{n} traces: all replay"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = CliRunner().invoke(main, ["replay", str(bad), "counterexamples/seed000/unprotected.json"])
    assert r.exit_code == 2
    assert "counterexamples/seed000/unprotected.json: replays: still reaches next-syscall-atomic (8 steps)" in r.output


def test_jobs_give_the_results_and_order_of_one_job(specs: Path) -> None:
    """verify --jobs 2: the same text, JSON results and saved files as
    --jobs 1, in the specs' order (checker/parallel.py)."""
    for k in range(3):
        (specs / f"v{k}.toml").write_text(VIOLATION)
    outs = []
    for jobs in ("1", "2"):
        code, out, err = run("verify", "specs", "--out", f"cx{jobs}", "--jobs", jobs, "--format", "json")
        doc = json.loads(out)
        outs.append([(r["spec"], r["verdict"], r["states"], r["trace_steps"]) for r in doc["results"]])
        assert code == 0 and err == ""
    assert outs[0] == outs[1] and [s for s, *_ in outs[0]] == sorted(s for s, *_ in outs[0])
    assert sorted(p.name for p in Path("cx1").iterdir()) == sorted(p.name for p in Path("cx2").iterdir())


def test_ctrl_c_with_jobs_keeps_the_finished_and_the_interrupted(tmp_path: Path) -> None:
    """A real SIGINT to `verify --jobs 2`: the small spec's verdict and the
    big one's "interrupted" outcome (with its statistics) both come back."""
    (tmp_path / "a.toml").write_text(HOLDS)
    (tmp_path / "b.toml").write_text(BIG)
    proc = subprocess.Popen([sys.executable, "-m", "rseqcheck.checker.cli", "verify", "a.toml", "b.toml", "--jobs", "2",
                             "--out", "cx"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    lines = out.splitlines()
    assert lines[0].startswith("ok   a.toml: holds") and lines[1].startswith("??   b.toml: unknown: interrupted")
    assert "interrupted: 0 of 2 specs not checked" in err and "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_with_jobs_keeps_what_finished_after_the_interrupted_one(tmp_path: Path, sig) -> None:
    """SIGINT as timeout(1) sends it (to the process, then to its group):
    `verify --jobs 2` reports the long spec under way as interrupted with
    its statistics and the two short ones that finished after it in the
    specs' order; it reported the first only (or nothing, when the second
    SIGINT or a worker's second one landed while collecting)."""
    (tmp_path / "a.toml").write_text(BIG)
    (tmp_path / "b.toml").write_text(HOLDS)
    (tmp_path / "c.toml").write_text(VIOLATION)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rseqcheck.checker.cli", "verify", "a.toml", "b.toml", "c.toml",
                             "--jobs", "2", "--out", "cx", "--format", "json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while not (tmp_path / "cx" / "c.json").exists() and time.monotonic() - t0 < 60:  # b and c are done
            time.sleep(0.1)
        time.sleep(max(0.0, 4 - (time.monotonic() - t0)))  # a is searching
        proc.send_signal(sig)
        os.killpg(proc.pid, sig)  # SIGTERM to the group (timeout(1), a CI runner) killed the workers
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 3, (out, err)
    doc = json.loads(out)
    assert (doc["exit_status"], doc["interrupted"], doc["not_checked"]) == (3, True, [])
    got = [(r["spec"], r["verdict"], r.get("reason")) for r in doc["results"]]
    assert got == [("a.toml", "unknown", "interrupted"), ("b.toml", "holds", None), ("c.toml", "violation", None)], got
    assert doc["results"][0]["states"] > 0 and "Traceback" not in err
