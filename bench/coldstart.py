"""Cold start: a new Python process importing fairproc and loading the shipped policy.

    python bench/coldstart.py [--runs N] [--wheel] [--against REV]

Runs ``python -c 'import fairproc; fairproc.load_policy("flexioffices")'`` ``--runs`` times
(default 20), each a process of its own, beside an empty interpreter (``python -c pass``),
``import fairproc`` alone, the same load with the policy cache turned off
(``FAIRPROC_CACHE_DIR=""``: the rule files read and structured in every process) and with an
engine's first question after it, and prints the median and spread of the wall time and of the CPU
time each process took (user + system, from the operating system's accounting of the child:
on a machine other work shares, the CPU time is the steadier figure). The processes run from
bytecode, as an installed package does (``PYTHONDONTWRITEBYTECODE`` is left out of their
environment, and one untimed run writes the bytecode first).

``--wheel`` measures fairproc as ``pip install fairproc`` leaves it rather than as this
checkout's interpreter has it: the wheel is built from the checkout and installed, with its
dependencies, in a new virtual environment in a temporary folder (removed after), and every
case runs in that environment's interpreter. An editable install (``pip install -e``, as the
README's development setup makes) adds its import hook to every process, the empty interpreter
included: about 10 ms on this machine.

``--against REV`` (with ``--wheel``) installs the wheel of the git revision ``REV`` too (``HEAD~1``,
a tag), in an environment of its own, and runs every case of both in turns: a change's effect
on the cold start, on a machine whose speed moves by a fifth from one minute to the next.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOAD = 'import fairproc; fairproc.load_policy("flexioffices")'
# (label, code, environment changes): the target is "import + load_policy", with the policy
# cache as a user has it (written by the untimed first run); beside it the same with the cache
# turned off (every process reads the TOML), and a host's first question on top.
CASES = (
    ("empty interpreter", "pass", {}),
    ("import fairproc", "import fairproc", {}),
    ("import + load_policy", LOAD, {}),
    ("  ... no policy cache", LOAD, {"FAIRPROC_CACHE_DIR": ""}),
    (
        "  ... + Engine, route",
        LOAD.replace("fairproc.load_policy", "p = fairproc.load_policy")
        + "; import datetime as dt; at = dt.datetime(2026, 11, 21, 10, tzinfo=dt.UTC)"
        + '; r = fairproc.Record("r1", "ada", "quick_quote", at, {"email": "a@example.com"})'
        + "; fairproc.Engine(p, fairproc.World([r])).route(r, at)",
        {},
    ),
)


# As an installed package runs: from its bytecode (pip compiles it on install). A shell that
# sets PYTHONDONTWRITEBYTECODE would otherwise have every process compile fairproc afresh.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def one(
    code: str, changes: dict[str, str] | None = None, python: str = sys.executable
) -> tuple[float, float]:
    """(wall, cpu) seconds of a new process of ``python`` running ``code``."""
    started = time.perf_counter()
    process = subprocess.Popen([python, "-c", code], env={**ENV, **(changes or {})})
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{code!r} failed with exit {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="processes per case")
    parser.add_argument("--quick", action="store_true", help="10 processes per case")
    parser.add_argument(
        "--wheel", action="store_true", help="from the built wheel in a new virtual environment"
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="with --wheel: also the wheel of git revision REV, both run in turns",
    )
    args = parser.parse_args(argv)
    runs = 10 if args.quick else args.runs
    if args.against and not args.wheel:
        parser.error("--against compares wheels: give --wheel too")
    if not args.wheel:
        measure(runs, {"": sys.executable})
        return 0
    archive = None
    if args.against:  # read before anything is built: a revision git does not know stops here
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", args.against],
            capture_output=True,
        )
        if archive.returncode:
            message = archive.stderr.decode(errors="replace").strip()
            parser.error(f"--against {args.against}: git archive failed: {message}")
    with tempfile.TemporaryDirectory(prefix="fairproc-coldstart-") as folder:
        pythons = {"this checkout": str(installed_wheel(Path(folder) / "checkout", ROOT))}
        print(f"(fairproc from its wheel, in {Path(folder) / 'checkout' / 'venv'})")
        if archive is not None:
            source = Path(folder) / "source"
            source.mkdir()
            subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
            pythons[args.against] = str(installed_wheel(Path(folder) / "against", source))
        measure(runs, pythons)
    return 0


def installed_wheel(folder: Path, source: Path) -> Path:
    """The interpreter of a new virtual environment in ``folder`` holding the wheel built from
    ``source`` (a checkout)."""
    folder.mkdir(parents=True)
    _quietly(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(source)
    )
    (wheel,) = folder.glob("fairproc-*.whl")
    _quietly(sys.executable, "-m", "venv", str(folder / "venv"))
    python = folder / "venv" / "bin" / "python"
    _quietly(str(python), "-m", "pip", "install", "-q", str(wheel))
    return python


def _quietly(*command: str) -> None:
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)


def measure(runs: int, pythons: dict[str, str]) -> None:
    """Every case ``runs`` times in each named interpreter, in turns, so a burst of other work
    on the machine falls on every case (and every interpreter) alike."""
    for python in pythons.values():
        one(LOAD, python=python)  # bytecode and the policy cache written first
    results: dict[tuple[str, str], list[tuple[float, float]]] = {
        (name, label): [] for name in pythons for label, _, _ in CASES
    }
    for _ in range(runs):
        for label, code, changes in CASES:
            for name, python in pythons.items():
                results[name, label].append(one(code, changes, python))
    print(f"cold start: median (fastest-slowest) of {runs} processes, milliseconds")
    for name in pythons:
        print(f"{name:<22} {'wall':>22} {'cpu (user + system)':>22}")
        for label, _, _ in CASES:
            walls = [w * 1000 for w, _ in results[name, label]]
            cpus = [c * 1000 for _, c in results[name, label]]
            print(f"{label:<22} {_spread(walls):>22} {_spread(cpus):>22}")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.1f} ({min(values):.1f}-{max(values):.1f})"


if __name__ == "__main__":
    sys.exit(main())
