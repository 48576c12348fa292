"""The wheel on its own: built, installed into a fresh virtual environment, and used from an
empty folder exactly as docs/quickstart.md and docs/cli.md say (issue 16, item 5).

Among the quickstart's commands: ``fairproc scenarios run flexioffices --store
sqlite:///scenarios.db``, the shipped scenarios on SQLite from the wheel alone.

Slow (a build and a virtual environment), so it runs when ``FAIRPROC_TEST_WHEEL`` is set: to
the path of a built wheel, or to ``build`` to build one here. ``.ci/run`` sets it in its wheel
section. Every ```sh line of the two pages runs in one shell, in page order, quickstart first;
it must exit 0, or the status its trailing comment gives (``# ...exit N``). The quickstart's
``pip install fairproc`` installs the wheel instead (the one substitution), a ```toml block the
text says to "Save this as `path`" is saved there, and the quickstart's Python blocks run as
the one script the page says they are, with the installed interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from test_docs import DOCS, FENCE

ROOT = Path(__file__).resolve().parent.parent
WHEEL = os.environ.get("FAIRPROC_TEST_WHEEL")
INSTALL = "pip install fairproc"
SAVE_AS = re.compile(r"Save this as `([^`]+)`:\s*$")
EXIT = re.compile(r"#.*\bexit (\d+)\b")  # a trailing comment naming the status

pytestmark = pytest.mark.skipif(
    not WHEEL,
    reason="FAIRPROC_TEST_WHEEL is not set: set it to a built wheel or to 'build' to install the "
    "wheel in a fresh virtual environment and run the quickstart from it (.ci/run does)",
)


def clean_env() -> dict[str, str]:
    """The environment without the test run's virtual environment or byte-code setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    }
    # python3 on the path is the interpreter running the tests (3.11 in .ci/run)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert WHEEL
    if WHEEL != "build":
        path = Path(WHEEL).resolve()
        assert path.is_file() and path.suffix == ".whl", f"FAIRPROC_TEST_WHEEL={WHEEL}"
        return path
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [
        line for line in (done.stdout + done.stderr).splitlines() if "warning" in line.lower()
    ]
    assert not warnings, "the wheel builds with warnings:\n" + "\n".join(warnings)
    (built,) = out.glob("*.whl")
    return built


def page_steps(page: Path) -> list[tuple[str, str, str]]:
    """(kind, text, where) in page order: ``sh`` commands (continuation lines joined),
    ``save`` (a path and its TOML), ``python`` blocks."""
    text = page.read_text(encoding="utf-8")
    steps: list[tuple[str, str, str]] = []
    for m in FENCE.finditer(text):
        lang, info, body = m.group(1), m.group(2).split(), m.group(3)
        line = text.count("\n", 0, m.start()) + 1
        where = f"{page.name}:{line}"
        if lang == "sh":
            for command in body.replace("\\\n", " ").splitlines():
                if command.strip() and not command.lstrip().startswith("#"):
                    steps.append(("sh", command.strip(), where))
        elif lang == "toml":
            before = text[: m.start()].rstrip("\n").splitlines()
            said = SAVE_AS.search(before[-1]) if before else None
            if said:
                steps.append(("save", f"{said.group(1)}\n{body}", where))
        elif lang == "python" and "no-run" not in info:
            steps.append(("python", body, where))
    return steps


def script_for(wheel: Path) -> tuple[str, int]:
    """One bash script running the pages' steps; and how many commands it checks."""
    lines = ["set -u", 'say() { printf "%s\\n" "$1" >&2; }']
    commands = 0
    python: list[str] = []
    installed = False
    for page in (DOCS / "quickstart.md", DOCS / "cli.md"):
        for kind, text, where in page_steps(page):
            if kind == "save":
                path, body = text.split("\n", 1)
                lines.append(f"mkdir -p {shlex.quote(str(Path(path).parent))}")
                lines.append(f"cat > {shlex.quote(path)} <<'FAIRPROC_EOF'\n{body}FAIRPROC_EOF")
            elif kind == "python":
                if page.name == "quickstart.md":
                    python.append(f"# {where}\n{text}")
            else:
                command = text
                if command == INSTALL:
                    command, installed = f"pip install -q {shlex.quote(str(wheel))}", True
                if page.name == "cli.md" and "sqlite:///crm.db" in command:
                    lines.append(CRM_DB)  # the application's store the page's commands read
                if page.name == "cli.md" and "./flexioffices-next" in command:
                    lines.append(NEXT_POLICY)  # the edited policy folder the page compares
                want = EXIT.search(command)
                lines.append(f"say {shlex.quote('$ ' + text)}")
                lines.append(command)
                lines.append(
                    f'rc=$?; [ "$rc" = {want.group(1) if want else 0} ] || '
                    f'{{ say {shlex.quote(f"{where}: exit ")}"$rc"; exit 1; }}'
                )
                commands += 1
    assert installed, f"docs/quickstart.md no longer says {INSTALL!r}"
    lines.append("cat > quickstart.py <<'FAIRPROC_EOF'\n" + "\n".join(python) + "FAIRPROC_EOF")
    lines.append(
        "python quickstart.py > /dev/null || { say 'quickstart.md python: failed'; exit 1; }"
    )
    return "\n".join(lines) + "\n", commands


# crm.db for docs/cli.md's sweep and request examples: made once, with the installed fairproc.
CRM_DB = """[ -f crm.db ] || python - <<'FAIRPROC_EOF'
import datetime as dt
from fairproc import Record
from fairproc.storage import ChangeSet, open_store

with open_store("sqlite:///crm.db") as store:
    store.apply(ChangeSet(put_records=[
        Record("q1", "ada", "quick_quote", dt.datetime(2026, 1, 10, 10, tzinfo=dt.UTC),
               {"name": "Ada Lovelace", "email": "ada@example.com"}),
        Record("w1", "ada", "website_visit", dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
               {"ip_address": "203.0.113.7"}),
    ]))
FAIRPROC_EOF"""


# ./flexioffices-next for docs/cli.md's diff example: the installed policy, copied unchanged.
NEXT_POLICY = """[ -d flexioffices-next ] || python - <<'FAIRPROC_EOF'
import shutil
from fairproc import load_policy

shutil.copytree(load_policy("flexioffices").path, "flexioffices-next")
FAIRPROC_EOF"""


def test_the_quickstart_and_the_cli_page_run_from_the_wheel_in_an_empty_folder(
    wheel: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    script, commands = script_for(wheel)
    (tmp_path / "docs.sh").write_text(script, encoding="utf-8")
    done = subprocess.run(
        ["bash", str(tmp_path / "docs.sh")],
        cwd=folder,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert commands >= 20  # the two pages' commands, every one of them checked
    # the venv the quickstart made holds fairproc from the wheel, not from this checkout
    shown = subprocess.run(
        [
            str(folder / ".venv" / "bin" / "python"),
            "-c",
            "import fairproc; print(fairproc.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    ).stdout
    assert str(folder / ".venv") in shown and str(ROOT) not in shown
