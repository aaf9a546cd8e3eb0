"""Issue #14 item 4, CI at scale: counterexamples laid out like the spec
folders (checker/outputs/layout.py), JUnit valid against the schema CI servers
read, specs not checked listed as errors, output errors as one line with
exit 4 (checker/outputs/errors.py), and a time limit for the whole run
(--total-timeout, checker/limits.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.checker.limits import Limits, RunOver
from rseqcheck.checker.outputs.layout import Place, layout
from rseqcheck.checker.verify import Outcome, junit_xml

from tests.test_cli import BIG, HOLDS, OUTCOMES_SPEC, VIOLATION

ROOT = Path(__file__).resolve().parent.parent
RSEQCHECK = [sys.executable, "-c", "from rseqcheck.checker.cli.app import main; main()"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


def tree(root: str) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


# ------------------------------------------------------------------ layout


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch) -> Path:
    """specs/ with one name in two folders and one spec at its top."""
    monkeypatch.chdir(tmp_path)
    for d in ("specs/seed001", "specs/seed002"):
        Path(d).mkdir(parents=True)
        Path(d, "x.toml").write_text(VIOLATION.replace("Next-syscall", f"{d}: Next-syscall"))
    Path("specs/top.toml").write_text(VIOLATION)
    Path("specs/ok.toml").write_text(HOLDS)
    return tmp_path


def test_a_folder_is_saved_in_its_own_layout_and_replays(corpus: Path) -> None:
    code, out, err = run("verify", "specs/", "--out", "cx")
    assert (code, err) == (0, ""), out
    assert tree("cx") == ["seed001/x.json", "seed001/x.txt", "seed002/x.json", "seed002/x.txt",
                          "top.json", "top.txt"]
    assert json.loads(Path("cx/seed002/x.json").read_text())["#meta"]["spec"] == "specs/seed002/x.toml"
    assert "     counterexample: cx/seed001/x.txt, cx/seed001/x.json" in out
    code, out, _ = run("replay", "cx")  # recursively, in one process
    assert code == 0 and out.splitlines()[-1] == "3 traces: all replay"


def test_one_file_is_saved_at_the_top_and_several_folders_below_their_root(corpus: Path) -> None:
    assert run("verify", "specs/seed001/x.toml", "--out", "one")[0] == 0
    assert tree("one") == ["x.json", "x.txt"]
    assert run("verify", "specs/seed001", "specs/seed002/x.toml", "--out", "two")[0] == 0
    assert tree("two") == ["seed001/x.json", "seed001/x.txt", "seed002/x.json", "seed002/x.txt"]


def test_a_clash_is_renamed_and_said(corpus: Path) -> None:
    Path("specs/seed001/x.spec").write_text(VIOLATION)  # same stem, same folder
    code, out, err = run("verify", "specs/seed001/x.toml", "specs/seed001/x.spec", "--out", "cx")
    assert code == 0, out + err
    assert tree("cx") == ["x-2.json", "x-2.txt", "x.json", "x.txt"]
    assert err == ("warning: specs/seed001/x.spec: counterexamples would take the same name\n"
                   "  as specs/seed001/x.toml's; saved as cx/x-2.txt/.json instead\n")
    assert json.loads(Path("cx/x-2.json").read_text())["#meta"]["spec"] == "specs/seed001/x.spec"
    code, out, err = run("verify", "specs/seed001/x.toml", "specs/seed001/x.spec", "--out", "cx",
                         "--format", "json")
    assert json.loads(out)["output_warnings"] == [
        "warning: specs/seed001/x.spec: counterexamples would take the same name as specs/seed001/x.toml's; "
        "saved as cx/x-2.txt/.json instead"]


def test_layout_rules(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for f in ("s/a/x.toml", "s/x.2.toml", "s/x.toml", "s/y.txt/z.toml", "s/y.toml"):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).write_text("")
    files = ["s/a/x.toml", "s/x.toml", "s/x.2.toml", "s/y.txt/z.toml", "s/y.toml"]
    places, clashes = layout(("s",), files)
    assert places == {"s/a/x.toml": Place("a", "x"), "s/x.toml": Place("", "x"), "s/x.2.toml": Place("", "x.2"),
                      "s/y.txt/z.toml": Place("y.txt", "z"), "s/y.toml": Place("", "y-2")}
    assert clashes == [("s/y.toml", None, Place("", "y-2"))]  # y.txt would be a file where a folder is
    # numbered counterexamples: x.toml's second is x.2.txt, the first of x.2.toml
    places, clashes = layout(("s",), files, numbered=True)
    assert places["s/x.2.toml"] == Place("", "x.2-2") and clashes[0] == ("s/x.2.toml", "s/x.toml", Place("", "x.2-2"))
    # one file by two paths: one place, no warning
    places, clashes = layout(("s", "s/x.toml"), ["s/x.toml", "s/../s/x.toml"])
    assert places["s/../s/x.toml"] == places["s/x.toml"] == Place("", "x") and clashes == []
    # absolute and relative paths together; nothing climbs out of --out
    places, _ = layout((str(tmp_path / "s/a"), "s/y.txt"), [str(tmp_path / "s/a/x.toml"), "s/y.txt/z.toml"])
    assert places == {str(tmp_path / "s/a/x.toml"): Place("a", "x"), "s/y.txt/z.toml": Place("y.txt", "z")}


def test_committed_counterexamples_are_laid_out_like_specs() -> None:
    """`rseqcheck verify specs/` saves specs/D/N.toml as counterexamples/D/N.*"""
    found = sorted((ROOT / "counterexamples").rglob("*.json"))
    assert len(found) >= 60
    for p in found:
        spec = json.loads(p.read_text())["#meta"]["spec"]
        rel = p.relative_to(ROOT / "counterexamples").with_suffix(".toml").as_posix()
        assert spec == f"specs/{rel}", p
        assert p.with_suffix(".txt").exists()


# ------------------------------------------------------------------- JUnit

# The rules of junit-10.xsd (jenkinsci/xunit-plugin,
# src/main/resources/org/jenkinsci/plugins/xunit/types/model/xsd/junit-10.xsd),
# the schema Jenkins' xUnit plugin validates JUnit reports against, written
# out as data: per element, its attributes, the required ones, the child
# elements it may have, and whether it may hold text (mixed or xs:string).


@dataclass(frozen=True)
class Rule:
    attrs: frozenset[str]
    required: frozenset[str] = frozenset()
    children: frozenset[str] = frozenset()
    text: bool = False


def _rule(attrs: str, required: str = "", children: str = "", text: bool = False) -> Rule:
    return Rule(frozenset(attrs.split()), frozenset(required.split()), frozenset(children.split()), text)


_RESULT = _rule("type message", text=True)  # failure, error, skipped: mixed, no child elements
SCHEMA = {
    "testsuites": _rule("name time tests failures errors", children="testsuite"),
    "testsuite": _rule("name tests failures errors group time skipped timestamp hostname id package file log url",
                       required="name tests failures errors",
                       children="testsuite properties testcase system-out system-err"),
    "properties": _rule("", children="property"),
    "property": _rule("name value", required="name value"),
    "testcase": _rule("name time classname group", required="name",
                      children="skipped error failure rerunFailure rerunError flakyFailure flakyError "
                               "system-out system-err"),
    "failure": _RESULT, "error": _RESULT, "skipped": _RESULT,
    "system-out": _rule("", text=True), "system-err": _rule("", text=True),
}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")  # testsuite(s)@time


def schema_problems(xml: str) -> list[str]:
    """What junit-10.xsd rejects in `xml` (empty: valid)."""
    root = ET.fromstring(xml.encode("utf-8"))
    problems = [] if root.tag == "testsuites" else [f"root element <{root.tag}>"]

    def walk(el: ET.Element, where: str) -> None:
        rule = SCHEMA.get(el.tag)
        if rule is None:
            problems.append(f"{where}: unknown element")
            return
        for a in sorted(set(el.attrib) - rule.attrs):
            problems.append(f"{where}: attribute {a} not allowed")
        for a in sorted(rule.required - set(el.attrib)):
            problems.append(f"{where}: attribute {a} missing")
        if el.tag in ("testsuites", "testsuite") and "time" in el.attrib and not SUREFIRE_TIME.fullmatch(el.get("time")):
            problems.append(f"{where}: time {el.get('time')!r} is not a SUREFIRE_TIME")
        if not rule.text and (el.text or "").strip():
            problems.append(f"{where}: text not allowed")
        for c in el:
            if c.tag not in rule.children:
                problems.append(f"{where}: child <{c.tag}> not allowed")
                continue
            if not rule.text and (c.tail or "").strip():
                problems.append(f"{where}: text not allowed")
            walk(c, f"{where}/{c.tag}")

    walk(root, root.tag)
    return problems


def counts_add_up(xml: str) -> None:
    """Beyond the schema: each count is the number of its testcases."""
    root = ET.fromstring(xml.encode("utf-8"))
    total = {"tests": 0, "failures": 0, "errors": 0}
    for s in root.findall("testsuite"):
        cases = s.findall("testcase")
        got = {"tests": len(cases), "failures": sum(len(c.findall("failure")) for c in cases),
               "errors": sum(len(c.findall("error")) for c in cases),
               "skipped": sum(len(c.findall("skipped")) for c in cases)}
        assert {k: int(s.get(k)) for k in got} == got, s.get("name")
        for k in total:
            total[k] += got[k]
    assert {k: int(root.get(k)) for k in total} == total


def test_the_schema_check_rejects_what_junit_10_rejects() -> None:
    assert schema_problems('<testsuites tests="1" skipped="0"><testsuite name="a" tests="1" failures="0" '
                           'errors="0" time="1.5"><testcase name="p"/></testsuite></testsuites>') == [
        "testsuites: attribute skipped not allowed"]
    assert schema_problems('<testsuites><testsuite name="a" tests="1"><testcase classname="x">'
                           '<failure><b/></failure></testcase><properties><property name="n"/></properties>'
                           '</testsuite></testsuites>') == [
        "testsuites/testsuite: attribute errors missing", "testsuites/testsuite: attribute failures missing",
        "testsuites/testsuite/testcase: attribute name missing",
        "testsuites/testsuite/testcase/failure: child <b> not allowed",
        "testsuites/testsuite/properties/property: attribute value missing"]
    assert schema_problems('<testsuites time="-1"/>') == ["testsuites: time '-1' is not a SUREFIRE_TIME"]


WARNED = HOLDS.replace("[thread.T0]", '[environment]\nsignals = ["SIGUSR1"]\nmax_signals = 0\n\n[thread.T0]')


def test_junit_of_every_kind_of_result_is_valid(tmp_path: Path, monkeypatch) -> None:
    """Holds, a violation (a property not reached: skipped), a spec error, a
    wrong verdict, --strict warnings, a timeout, a failed [outcomes]
    condition, and specs not checked."""
    monkeypatch.chdir(tmp_path)
    Path("s").mkdir()
    Path("s/a_holds.toml").write_text(HOLDS)
    Path("s/b_violation.toml").write_text(VIOLATION)
    Path("s/c_bad.toml").write_text("[spec]\npreset = 1\n")
    Path("s/d_wrong.toml").write_text(HOLDS.replace('expect = "holds"', 'expect = "violation"'))
    Path("s/e_warned.toml").write_text(WARNED)
    Path("s/f_big.toml").write_text(BIG)
    Path("s/g_outcomes.toml").write_text(OUTCOMES_SPEC.format(cond="h == 0"))
    code, _, _ = run("verify", "s", "--strict", "--timeout", "0.3", "--junit", "j.xml", "--out", "cx", "--jobs", "1")
    assert code == 2
    xml = Path("j.xml").read_text()
    assert schema_problems(xml) == []
    counts_add_up(xml)
    root = ET.fromstring(xml)
    kinds = sorted(f"{e.tag}:{e.get('type') or ''}" for e in root.iter() if e.tag in ("failure", "error", "skipped"))
    assert kinds == ["error:resource-limit", "error:spec-error", "failure:outcomes", "failure:verdict",
                     "failure:warnings", "skipped:"]
    # the specs not checked after Ctrl-C or --total-timeout: one error each
    done = [Outcome("s/c_bad.toml", error="s/c_bad.toml:2: preset must be a string")]
    xml = junit_xml(done, not_checked=["s/x.toml", "s/y.toml"], why="interrupted")
    assert schema_problems(xml) == []
    counts_add_up(xml)
    root = ET.fromstring(xml)
    assert (root.get("tests"), root.get("errors")) == ("3", "3")
    e = root.find("testsuite[@name='s/y.toml']/testcase[@name='(spec)']/error")
    assert (e.get("type"), e.get("message")) == ("not-checked", "not checked: interrupted")


# ------------------------------------------------------------ output errors


def _full(*args: str, cwd: Path = ROOT) -> tuple[int, str]:
    """Run rseqcheck with its stdout on /dev/full (a disk that is full)."""
    with open("/dev/full", "w") as full:
        p = subprocess.run(RSEQCHECK + list(args), cwd=cwd, stdout=full, stderr=subprocess.PIPE, text=True, env=ENV)
    return p.returncode, p.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["verify", "specs/seed000/unprotected.toml", "--out", "{tmp}/cx"],
                                  ["replay", "counterexamples/seed000/unprotected.json"],
                                  ["show", "counterexamples/seed000/unprotected.json"], ["rules"]])
def test_a_full_disk_under_stdout_is_one_line_and_exit_4(tmp_path: Path, args: list[str]) -> None:
    code, err = _full(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert (code, err) == (4, "rseqcheck: error: cannot write the output: No space left on device\n")


@pytest.mark.parametrize("args", [["outcomes", "specs/conformance/p12_percpu_counter.toml"], ["rules"],
                                  ["verify", "specs/seed000", "--out", "{tmp}/cx"]])
def test_a_closed_pipe_is_a_quiet_exit_4(tmp_path: Path, args: list[str]) -> None:
    """`| head`: the reader has gone (here before the first write, so that
    no write can slip into the pipe's buffer first).  Was an "internal
    error: BrokenPipeError" (outcomes) or a silent exit 1 (rules, verify),
    which says a verdict differs."""
    r, w = os.pipe()
    os.close(r)
    p = subprocess.run(RSEQCHECK + [a.replace("{tmp}", str(tmp_path)) for a in args], cwd=ROOT, stdout=w,
                       stderr=subprocess.PIPE, text=True, env=ENV, timeout=120)
    os.close(w)
    assert (p.returncode, p.stderr) == (4, "")


SYSFS = Path("/sys/kernel")  # no one, not even root, makes a folder or file in sysfs


@pytest.mark.skipif(not SYSFS.is_dir(), reason="needs sysfs")
def test_out_and_junit_where_nothing_can_be_written_are_exit_4(tmp_path: Path) -> None:
    spec = str(ROOT / "specs/seed000/unprotected.toml")
    code, out, err = run("verify", spec, "--out", str(SYSFS / "rseqcheck-cx"))
    assert code == 4 and "violation of next-syscall-atomic" in out
    assert err == f"rseqcheck: error: {SYSFS}/rseqcheck-cx: cannot write the counterexample: Operation not permitted\n"
    code, out, err = run("verify", spec, "--out", str(tmp_path / "cx"), "--junit", str(SYSFS / "r.xml"),
                         "--format", "json")
    assert code == json.loads(out)["exit_status"] == 4
    assert re.fullmatch(rf"rseqcheck: error: {SYSFS}/r\.xml: cannot write the JUnit file: [A-Z][a-z ]+\n", err), err
    assert tree(str(tmp_path / "cx")) == ["unprotected.json", "unprotected.txt"]


@pytest.mark.skipif(not SYSFS.is_dir(), reason="needs sysfs")
def test_impact_where_nothing_can_be_written_is_exit_4(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = run("impact", "--from", "linux-6.19", "--to", "linux-6.18", "specs/seed001/plain_cs_linux619.toml",
                         "--out", str(SYSFS / "rseqcheck-impact"))
    assert code == 4 and "1 flipped" in out
    assert err == (f"rseqcheck: error: {SYSFS}/rseqcheck-impact: cannot write the counterexample: "
                   "Operation not permitted\n")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_out_is_exit_4(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, _, err = run("verify", str(ROOT / "specs/seed000/unprotected.toml"), "--out", str(ro))
    finally:
        ro.chmod(0o755)
    assert code == 4 and err.startswith("rseqcheck: error: ") and err.endswith(": Permission denied\n")


# ----------------------------------------------------------- --total-timeout


def test_limits_for_a_spec_within_the_run() -> None:
    lim = Limits(timeout=10, total=100).start_run()
    assert lim.for_spec() is lim  # 10 s fit in what is left
    cut = Limits(timeout=10, total=2).start_run().for_spec()
    assert cut.cut and 1.5 < cut.timeout <= 2
    assert Limits(total=5).start_run().for_spec().timeout <= 5
    with pytest.raises(RunOver, match=r"the run's time limit \(--total-timeout 5 s\) was reached"):
        Limits(total=5, deadline=time.time() - 1).for_spec()
    assert Limits(timeout=3).start_run().for_spec() == Limits(timeout=3)


@pytest.mark.parametrize("jobs,big", [("1", 1), ("2", 2)])
def test_total_timeout_stops_the_run_and_lists_the_rest(tmp_path: Path, monkeypatch, jobs: str, big: int) -> None:
    """One big spec per worker runs into the run's limit; the specs after
    them never start: not checked, in the text, JSON and JUnit; exit 3."""
    monkeypatch.chdir(tmp_path)
    names = [f"big{k}.toml" for k in range(big)] + ["holds.toml", "violation.toml"]
    for n, text in zip(names, [BIG] * big + [HOLDS, VIOLATION]):
        Path(n).write_text(text)
    t = time.monotonic()
    code, out, err = run("verify", *names, "--total-timeout", "1", "--jobs", jobs, "--junit", "j.xml",
                         "--format", "json", "--out", "cx")
    assert time.monotonic() - t < 10  # 1 s, the grace, and start-up on a loaded machine
    doc = json.loads(out)
    assert code == doc["exit_status"] == 3
    assert doc["total_timeout_reached"] and not doc["interrupted"]
    assert doc["not_checked"] == ["holds.toml", "violation.toml"]
    assert [r["spec"] for r in doc["results"]] == names[:big]
    for r in doc["results"]:
        assert r["verdict"] == "unknown"  # states: 0 when a loaded machine cut it while building
        assert r["reason"] == "the run's time limit (--total-timeout 1 s) was reached"
    xml = Path("j.xml").read_text()
    assert schema_problems(xml) == []
    root = ET.fromstring(xml)
    assert (root.get("tests"), root.get("errors")) == (str(big + 2), str(big + 2))
    msgs = [e.get("message") for e in root.iter("error") if e.get("type") == "not-checked"]
    assert msgs == ["not checked: the run's time limit (--total-timeout 1 s) was reached"] * 2
    assert not Path("cx").exists()
    code, out, err = run("verify", *names[big:], "--total-timeout", "1", "--jobs", jobs, "--out", "cx")
    assert code == 0 and err == ""  # enough time: as without the limit


def test_total_timeout_in_text(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.toml").write_text(BIG)
    Path("b.toml").write_text(HOLDS)
    code, out, err = run("verify", "a.toml", "b.toml", "--total-timeout", "0.5", "--jobs", "1")
    assert code == 3
    assert out.startswith("??   a.toml: unknown: the run's time limit (--total-timeout 0.5 s) was reached")
    assert err == ("the run's time limit (--total-timeout 0.5 s) was reached: 1 of 2 specs\n  not checked\n"
                   "  not checked: b.toml\n")
    for bad in ("0", "nan", "inf", "-1"):
        code, _, err = run("verify", "b.toml", "--total-timeout", bad)
        assert code == 2 and "--total-timeout" in err
