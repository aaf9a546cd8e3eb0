"""Bad input never gives a traceback: every spec error is one line
`file:line: message` on stderr and exit status 2.

Each file in tests/bad_specs/ states on its first line the error it must
produce: `# error: LINE: MESSAGE-PREFIX`.  Line numbers count from the top
of the file, code blocks included.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rseqcheck.checker.cli.app import main
from rseqcheck.model.errors import SpecError
from rseqcheck.model.spec import load_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BAD = sorted(HERE.glob("bad_specs/*.toml"))
HEADER = re.compile(r"^# error: (\d+): (.+)$")

GOOD_PRELUDE = '[spec]\npreset = "linux-6.18"\n\n'
GOOD_CHECK = '\n[check]\nproperties = ["no-unexpected-kill"]\n'


def expected(path: Path) -> tuple[int, str]:
    m = HEADER.match(path.read_text().split("\n", 1)[0])
    assert m, f"{path}: first line must be '# error: LINE: MESSAGE'"
    return int(m.group(1)), m.group(2)


def run_cli(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exc_info
    return r.exit_code, r.stdout, r.stderr


def assert_one_error(code: int, err: str, file: str, line: int, prefix: str) -> None:
    assert code == 2
    assert "Traceback" not in err
    errors = [x for x in err.splitlines() if x.strip()]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"{file}:{line}: {prefix}"), errors[0]


def test_bad_spec_corpus_covers_every_case() -> None:
    names = {p.stem for p in BAD}
    for case in (
        "toml_syntax", "missing_spec", "missing_check", "missing_thread", "missing_preset", "unknown_preset",
        "unknown_rule", "bad_rule_choice", "unknown_property", "unknown_instruction", "unknown_label",
        "unknown_descriptor", "rseq_cs_label_missing", "unknown_syscall", "bad_expect", "max_nesting_range",
        "max_signals_range", "depth_range", "wrong_type_int", "unknown_key", "unknown_section", "bad_assert",
        "code_same_line", "code_next_line",
    ):  # fmt: skip
        assert case in names


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_spec(path: Path) -> None:
    line, prefix = expected(path)
    rel = str(path.relative_to(ROOT))
    # the loader itself
    with pytest.raises(SpecError) as e:
        load_spec(rel)
    assert (e.value.line, str(e.value)[: len(rel) + len(str(line)) + 2]) == (line, f"{rel}:{line}:")
    assert e.value.message.startswith(prefix), e.value.message
    # the command line
    code, out, err = run_cli("verify", rel, "--out", str(HERE / "unused"))
    assert_one_error(code, err, rel, line, prefix)
    assert out.endswith("0 of 1 specs as expected\n")


def test_bad_specs_in_a_real_process(tmp_path: Path) -> None:
    """A real interpreter: nothing but the error lines reaches stderr."""
    bad = [str(p.relative_to(ROOT)) for p in BAD]
    r = subprocess.run(
        [sys.executable, "-m", "rseqcheck.checker.cli", "verify", *bad, "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == len(bad)
    for path, got in zip(bad, lines):
        line, prefix = expected(ROOT / path)
        assert got.startswith(f"{path}:{line}: {prefix}"), got
    assert f"0 of {len(bad)} specs as expected" in r.stdout
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------- line numbers in code blocks


def write(tmp_path: Path, text: str, name: str = "s.toml") -> str:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return str(p)


@pytest.mark.parametrize(
    "layout, line",
    [
        # code starts on the line after `code = """` (TOML drops that newline)
        ('[thread.T0]\ncode = """\n        nop\n        bogus\n"""\n', 7),
        # code starts on the same line as `code = """`
        ('[thread.T0]\ncode = """nop\n        bogus\n"""\n', 6),
        ('[thread.T0]\ncode = """bogus\n"""\n', 5),
        # literal multi-line string
        ("[thread.T0]\ncode = '''\nnop\nbogus\n'''\n", 7),
        # one-line strings: the line of the key
        ('[thread.T0]\ncode = "bogus"\n', 5),
        ("[thread.T0]\n\ncode = 'bogus'\n", 6),
        # dotted keys
        ('[thread]\nT0.code = """\nbogus\n"""\n', 6),
        # blank lines and comments inside the block count
        ('[thread.T0]\ncode = """\n\n; comment\n\n        bogus\n"""\n', 9),
        # a multi-line string before the block does not shift it
        ('[thread.T0]\nrseq_flags = []\ncode = """\nnop\n"""\n[thread.T1]\ncode = """\nnop\nnop\nbogus\n"""\n', 13),
    ],
)
def test_code_line_numbers(tmp_path: Path, layout: str, line: int) -> None:
    f = write(tmp_path, GOOD_PRELUDE + layout + GOOD_CHECK)
    code, _, err = run_cli("verify", f, "--out", str(tmp_path / "cx"))
    assert_one_error(code, err, f, line, "unknown instruction 'bogus'")


def test_code_line_numbers_top_level_dotted_key(tmp_path: Path) -> None:
    f = write(tmp_path, 'thread.T0.code = """\nnop\nbogus\n"""\n' + GOOD_PRELUDE + GOOD_CHECK)
    code, _, err = run_cli("verify", f)
    assert_one_error(code, err, f, 3, "unknown instruction 'bogus'")


def test_code_line_numbers_with_crlf(tmp_path: Path) -> None:
    text = GOOD_PRELUDE + '[thread.T0]\ncode = """\n        nop\n        bogus\n"""\n' + GOOD_CHECK
    f = write(tmp_path, text.replace("\n", "\r\n"))
    code, _, err = run_cli("verify", f, "--out", str(tmp_path / "cx"))
    assert_one_error(code, err, f, 7, "unknown instruction 'bogus'")


def test_handler_code_line(tmp_path: Path) -> None:
    text = (
        GOOD_PRELUDE
        + '[environment]\nsignals = ["SIGUSR1"]\nmax_signals = 1\n\n'  # lines 4-7
        + '[thread.T0]\ncode = "exit"\n\n'  # 8-10
        + '[handler.SIGUSR1]\ncode = """\n  nop\n  syscall nosuch\n"""\n'  # 11-15
        + GOOD_CHECK
    )
    f = write(tmp_path, text)
    code, _, err = run_cli("verify", f)
    assert_one_error(code, err, f, 14, "unknown syscall 'nosuch'")


# ------------------------------------------------------ other unusual input


@pytest.mark.parametrize(
    "text, line, prefix",
    [
        ("", 1, "missing section [spec]"),
        ("[spec]\npreset = ", 2, "TOML error: Invalid value"),
        ('[spec]\npreset = "linux-6.18"\npreset = "linux-6.0"\n', 3, "TOML error: Cannot overwrite a value"),
        ("thread = 3\n" + GOOD_PRELUDE + GOOD_CHECK, 1, "[thread] must be a table"),
        (GOOD_PRELUDE + "thread = 3\n" + GOOD_CHECK, 4, "unknown key 'thread' in [spec]"),
        (GOOD_PRELUDE + "[thread.T0]\nrseq_flags = []\n" + GOOD_CHECK, 4, "[thread.T0] needs code"),
        (GOOD_PRELUDE + "[thread.T0]\ncode = 3\n" + GOOD_CHECK, 5, "code must be a string"),
        (GOOD_PRELUDE + "[[thread]]\ncode = 'exit'\n" + GOOD_CHECK, 4, "[thread] must be a table"),
        (GOOD_PRELUDE + "[rules]\nrseq.debug = 'on'\n" + '[thread.T0]\ncode = "exit"\n' + GOOD_CHECK, 5,
         "rule names contain dots: quote them"),
        (GOOD_PRELUDE + '[environment]\nsignals = "SIGUSR1"\n[thread.T0]\ncode = "exit"\n' + GOOD_CHECK, 5,
         "signals must be a list"),
        (GOOD_PRELUDE + '[thread.T0]\ncode = """\nassert ' + "(" * 3000 + "1" + ")" * 3000 + '\n"""\n' + GOOD_CHECK,
         6, "expression nested too deeply"),
    ],
)
def test_unusual_input(tmp_path: Path, text: str, line: int, prefix: str) -> None:
    f = write(tmp_path, text)
    code, _, err = run_cli("verify", f)
    assert_one_error(code, err, f, line, prefix)


# ----------------------------------- names in expressions: registers, arrays

R99 = "register %r99 is out of range: the registers are %r0..%r15"
R16 = "register %r16 is out of range: the registers are %r0..%r15"
NO_CND = 'cnd[...]: no per-CPU array cnd (declare "cnd[cpu]" = [MIN, MAX] in [variables])'


@pytest.mark.parametrize(
    "prop, outcome, code, line, message",
    [
        # a `%`-name that is not a register is an error wherever an
        # expression is parsed (it was a user variable "%r99" that stayed 0)
        ("", "", "mov %r0, 1\nassert %r99 == 0", 14, R99),
        ("", "", "mov %r0, 1\nassert %r16 == 0", 14, R16),
        ("", "", "assert %rax == 0", 13, "'%rax' is not a register: the registers are %r0..%r15"),
        ("always %r99 == 0", "", "nop", 8, R99),
        ("sometimes cnt[0] == %r16", "", "nop", 8, R16),
        ("", 'exists = "%r99 == 0"', "nop", 10, R99),
        # and in an operand, rather than the instruction's usage
        ("", "", "nop\nadd cnt[%r16], 1", 14, R16),
        # names the model's build looks up: the assert's line, the property's
        ("", "", "mov %r0, 1\nassert cnd[0] == 0", 14, NO_CND),
        ("", "", "assert rseq.cpuid == 0", 13, "rseq.cpuid: the rseq area's fields are cpu_id_start, cpu_id, node_id, mm_cid"),
        ("always cnt[2] == 0", "", "nop", 8, "cnt[2]: the array has 2 slots (one per CPU)"),
        ("always cnd[0] == 0", "", "nop", 8, NO_CND),
    ],
)
def test_names_in_expressions(tmp_path: Path, prop: str, outcome: str, code: str, line: int, message: str) -> None:
    props = ", ".join(f'"{p}"' for p in ("no-unexpected-kill", prop) if p)
    text = (GOOD_PRELUDE + '[variables]\n"cnt[cpu]" = [0, 3]\n\n'  # lines 1-6
            + f"[check]\nproperties = [{props}]\n"  # 7-8
            + f"[outcomes]\n{outcome or '# none'}\n"  # 9-10
            + f'[thread.T0]\ncode = """\n{code}\n"""\n')  # code from line 13
    f = write(tmp_path, text)
    rc, out, err = run_cli("verify", f, "--out", str(tmp_path / "cx"))
    assert (rc, err) == (2, f"{f}:{line}: {message}\n")
    assert out.endswith("0 of 1 specs as expected\n")


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "latin1.toml"
    p.write_bytes(b'[spec]\npreset = "linux-6.18"\ntitle = "caf\xe9"\n')
    code, _, err = run_cli("verify", str(p))
    assert_one_error(code, err, str(p), 3, "not UTF-8 text")


def test_internal_error_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("rseqcheck.checker.cross.check_spec", boom)
    code, _, err = run_cli("verify", str(ROOT / "specs/seed000/design_example.toml"))
    assert code == 2 and "Traceback" not in err
    assert "internal error: RuntimeError: engine exploded" in err


def test_design_example_stays_valid(tmp_path: Path) -> None:
    code, out, err = run_cli("verify", str(ROOT / "specs/seed000/design_example.toml"), "--out", str(tmp_path))
    assert (code, err) == (0, "")
    assert out.startswith(f"ok   {ROOT / 'specs/seed000/design_example.toml'}: holds")
