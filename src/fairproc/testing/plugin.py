"""fairproc's pytest plugin, registered through the ``pytest11`` entry point.

Installing fairproc is enough: pytest loads this module as the plugin ``fairproc`` (turn it off
with ``-p no:fairproc``). It gives a test suite

* fixtures: ``fairproc_policy`` (the loaded policy), ``fairproc_clock`` (a pinned, aware
  ``now``) and ``fairproc_engine`` (a world builder and engine on a fresh in-memory store);
* markers: ``@pytest.mark.fairproc_policy("name-or-path")`` and
  ``@pytest.mark.fairproc_now("2026-11-21T10:00:00Z")``;
* ini options: ``fairproc_policy``, ``fairproc_now`` and ``fairproc_scenarios``;
* scenario files as test items: a ``*.toml`` file holding a ``[scenario]`` table, under a path
  named on the command line or listed in ``fairproc_scenarios`` (or under a conftest.py that
  uses :func:`collect_scenario_files`), is collected with one item per expectation, run in
  file order.

The module does not import hypothesis (only :mod:`fairproc.testing.strategies` does), and
imports fairproc's own modules it needs only when a fixture or a scenario file needs them;
importing the plugin still runs ``fairproc/__init__.py``, so pytest loads fairproc when it
starts (measure fairproc's own coverage with ``coverage run -m pytest``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from _pytest._code.code import TerminalRepr

    from fairproc.errors import Problem
    from fairproc.model import Policy
    from fairproc.scenarios import Expectation, ExpectationResult, Scenario
    from fairproc.testing.harness import Clock, EngineBuilder

DEFAULT_POLICY = "flexioffices"

_SCENARIO_ROOTS = pytest.StashKey[tuple[Path, ...]]()


# --- configuration ---------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fairproc", "fairproc policies")
    group.addoption(
        "--fairproc-policy",
        dest="fairproc_policy",
        default=None,
        metavar="NAME_OR_PATH",
        help="the policy the fairproc_policy fixture loads (overrides the ini option)",
    )
    parser.addini(
        "fairproc_policy",
        "the policy the fairproc_policy fixture loads: a shipped policy's name or a path to a "
        f"policy folder, relative to the ini file (default: {DEFAULT_POLICY})",
        default=DEFAULT_POLICY,
    )
    parser.addini(
        "fairproc_now",
        "where the fairproc_clock fixture is pinned: an ISO 8601 date-time with an offset",
        default="",
    )
    parser.addini(
        "fairproc_scenarios",
        "folders (or files) whose scenario files pytest collects as test items, besides the "
        "paths named on the command line",
        type="paths",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fairproc_policy(name_or_path): the policy the fairproc fixtures load for this test "
        "(a shipped policy's name, or a folder relative to the test file)",
    )
    config.addinivalue_line(
        "markers",
        "fairproc_now(instant): where fairproc_clock is pinned for this test (ISO 8601 with an "
        "offset, or an aware datetime)",
    )
    config.addinivalue_line(
        "markers", "fairproc_scenario: an expectation of a fairproc scenario file"
    )
    config.stash[_SCENARIO_ROOTS] = _scenario_roots(config)


def _scenario_roots(config: pytest.Config) -> tuple[Path, ...]:
    """The paths under which scenario files are test items: those named on the command line
    (not the testpaths or the current folder pytest falls back to) and the ini option's."""
    roots: list[Path] = []
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        base = config.invocation_params.dir
        for arg in config.args:
            path = arg.split("::", 1)[0]
            if path:
                roots.append((base / path).absolute())
    roots.extend(Path(p).absolute() for p in config.getini("fairproc_scenarios"))
    return tuple(dict.fromkeys(roots))


def _under(path: Path, roots: Sequence[Path]) -> bool:
    forms = {path.absolute(), path.resolve()}
    for root in roots:
        for form in forms:
            if form == root or root in form.parents:
                return True
        resolved = root.resolve()
        if any(form == resolved or resolved in form.parents for form in forms):
            return True
    return False


# --- fixtures --------------------------------------------------------------------------------


def _load_policy(value: Any, base: Path) -> Policy:
    from fairproc.loader import load_policy
    from fairproc.model import Policy

    if isinstance(value, Policy):
        return value
    text = str(value)
    looks_like_path = (
        isinstance(value, Path) or any(s in text for s in ("/", "\\")) or (text.startswith("."))
    )
    if looks_like_path or (base / text).is_dir():
        return load_policy((base / text).resolve())
    return load_policy(text)


def _ini_base(config: pytest.Config) -> Path:
    return config.inipath.parent if config.inipath is not None else config.rootpath


@pytest.fixture
def fairproc_policy(request: pytest.FixtureRequest) -> Policy:
    """The policy under test, loaded once per session and shared (policies are immutable).

    Chosen by, first to last: ``@pytest.mark.fairproc_policy("name-or-path")`` on the test,
    its class or module (a path is relative to the test file); ``--fairproc-policy``; the ini
    option ``fairproc_policy`` (relative to the ini file); ``"flexioffices"``.
    """
    config = request.config
    marker = request.node.get_closest_marker("fairproc_policy")
    if marker is not None:
        if len(marker.args) != 1:
            raise pytest.UsageError(
                'expected @pytest.mark.fairproc_policy("name-or-path") with one argument'
            )
        return _load_policy(marker.args[0], Path(request.node.path).parent)
    option = config.getoption("fairproc_policy", default=None)
    if option:
        return _load_policy(option, config.invocation_params.dir)
    value = config.getini("fairproc_policy") or DEFAULT_POLICY
    return _load_policy(value, _ini_base(config))


@pytest.fixture
def fairproc_clock(
    request: pytest.FixtureRequest, fairproc_policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> Clock:
    """A clock pinned to an aware instant that only moves when the test moves it.

    Pinned by ``@pytest.mark.fairproc_now(...)``, else the ini option ``fairproc_now``, else
    :data:`fairproc.testing.harness.DEFAULT_NOW` (Monday 2026-11-23 10:00 UTC). Calendar periods
    move it on the policy's local clock. ``clock.patch("myapp.clock.now")`` makes a host
    application's own ``now()`` read it until the test ends.
    """
    from fairproc.testing.harness import DEFAULT_NOW, Clock

    marker = request.node.get_closest_marker("fairproc_now")
    now: Any = DEFAULT_NOW
    if marker is not None:
        now = marker.args[0] if marker.args else marker.kwargs.get("now", DEFAULT_NOW)
    elif request.config.getini("fairproc_now"):
        now = request.config.getini("fairproc_now")
    clock = Clock(now, tz=fairproc_policy.tz)

    def patch(target: str, value: Any) -> None:
        monkeypatch.setattr(target, value)

    clock._patch = patch
    return clock


@pytest.fixture
def fairproc_engine(fairproc_policy: Policy, fairproc_clock: Clock) -> EngineBuilder:
    """A world builder over a fresh in-memory store, asking at the pinned clock's ``now``.

    ``fairproc_engine.add_record(...)`` / ``add_event(...)`` / ``suppress(...)`` build the
    world; ``fairproc_engine.may_email("ada")`` (and the engine's other questions) ask it;
    ``fairproc_engine.engine`` is the :class:`~fairproc.Engine`; ``fairproc_engine(world)``
    is an engine over a :class:`~fairproc.World` of your own.
    """
    from fairproc.testing.harness import EngineBuilder

    return EngineBuilder(fairproc_policy, fairproc_clock)


# --- scenario files as test items -------------------------------------------------------------


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files under the paths named on the command line or in ``fairproc_scenarios``."""
    if file_path.suffix != ".toml":
        return None
    roots = parent.config.stash.get(_SCENARIO_ROOTS, ())
    if not roots or not _under(file_path, roots):
        return None
    return _scenario_file(file_path, parent)


def collect_scenario_files(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect every scenario file under a conftest.py's folder, on any pytest run.

    In that ``conftest.py``::

        from fairproc.testing.plugin import collect_scenario_files as pytest_collect_file

    pytest calls a conftest's hooks only for the paths under its folder, so this opts that
    folder in (a file also named on the command line is still collected once).
    """
    if file_path.suffix != ".toml":
        return None
    return _scenario_file(file_path, parent)


_COLLECTED = pytest.StashKey[set[tuple[int, Path]]]()


def _scenario_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    from fairproc.scenarios import is_scenario_file

    if not is_scenario_file(file_path):
        return None
    # The plugin and a conftest may both offer the file to the same parent: collect it once.
    seen = parent.config.stash.setdefault(_COLLECTED, set())
    key = (id(parent), file_path.resolve())
    if key in seen:
        return None
    seen.add(key)
    collector: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return collector


def _mark(item: pytest.Item) -> None:
    """Mark a scenario item ``fairproc_scenario``, if the plugin registered the marker (with
    ``-p no:fairproc`` and a conftest collecting scenarios, an unknown marker would warn)."""
    if any(m.startswith("fairproc_scenario:") for m in item.config.getini("markers")):
        item.add_marker("fairproc_scenario")


class ScenarioFailed(AssertionError):
    """An expectation of a scenario file did not hold."""

    def __init__(self, result: ExpectationResult):
        self.result = result
        super().__init__(result.expectation.name)


class ScenarioUnreadable(AssertionError):
    """A scenario file could not be read."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class ScenarioFile(pytest.File):
    """A scenario file: one test item per expectation, all run in one pass in file order
    (a request expectation changes the world for those after it), the results kept."""

    scenario: Scenario | None = None
    _results: list[ExpectationResult | BaseException] | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from fairproc.errors import FairprocError, Problem, ProblemsError
        from fairproc.scenarios import load_scenario

        try:
            self.scenario = load_scenario(self.path)
        except ProblemsError as exc:
            yield UnreadableScenario.from_parent(self, name="[unreadable]", problems=exc.problems)
            return
        except FairprocError as exc:
            problems = (Problem(str(exc), file=str(self.path)),)
            yield UnreadableScenario.from_parent(self, name="[unreadable]", problems=problems)
            return
        for position, expectation in enumerate(self.scenario.expectations):
            yield ExpectationItem.from_parent(
                self, name=expectation.name, expectation=expectation, position=position
            )

    def results(self) -> list[ExpectationResult | BaseException]:
        """Every expectation's result, run once, in file order; an exception takes the place
        of the expectation that raised it, and of those after it, which could not run."""
        if self._results is None:
            from fairproc.scenarios import iter_results

            assert self.scenario is not None
            out: list[ExpectationResult | BaseException] = []
            try:
                for result in iter_results(self.scenario):
                    out.append(result)
            except Exception as exc:
                out.append(exc)
                failed = self.scenario.expectations[len(out) - 1].name
                while len(out) < len(self.scenario.expectations):
                    out.append(RuntimeError(f"not run: {failed} raised an exception"))
            self._results = out
        return self._results


class ExpectationItem(pytest.Item):
    """One expectation of a scenario file."""

    def __init__(self, *, expectation: Expectation, position: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.expectation = expectation
        self.position = position
        _mark(self)

    @property
    def scenario_file(self) -> ScenarioFile:
        parent = self.parent
        assert isinstance(parent, ScenarioFile)
        return parent

    def runtest(self) -> None:
        result = self.scenario_file.results()[self.position]
        if isinstance(result, BaseException):
            raise result
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailed):
            return _describe_failure(self, excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.expectation.line
        scenario = self.scenario_file.scenario
        title = f"{scenario.title}: " if scenario is not None else ""
        return self.path, (line - 1 if line else None), f"{title}{self.expectation.name}"


def _describe_failure(item: ExpectationItem, result: ExpectationResult) -> str:
    exp = result.expectation
    scenario = item.scenario_file.scenario
    where = f"{item.path.name}:{exp.line}" if exp.line else item.path.name

    def show(values: Mapping[str, Any]) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in values.items()) or "(nothing)"

    lines = [
        f"expected {show(result.expected)}",
        f"     got {show(result.actual)}" if not result.error else f"   error {result.error}",
        "",
        f"{where}: {exp.name} (ask {exp.ask} at {_utc(exp.at)})",
    ]
    if scenario is not None:
        lines.append(f"scenario: {scenario.title} ({scenario.policy.id})")
    if result.decision is not None:
        lines.append("")
        lines.append("explanation:")
        lines.extend("  " + line for line in result.decision.explain().splitlines())
    return "\n".join(lines)


def _utc(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class UnreadableScenario(pytest.Item):
    """A scenario file that could not be read: one failing item naming every problem."""

    def __init__(self, *, problems: Sequence[Problem], **kwargs: Any):
        super().__init__(**kwargs)
        self.problems = tuple(problems)
        _mark(self)

    def runtest(self) -> None:
        raise ScenarioUnreadable(self.problems)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioUnreadable):
            first, *more = self.problems or (None,)
            lines = [f"scenario file could not be read: {first}"]
            if more:
                lines.append(f"and {len(more)} more problem{'s' if len(more) > 1 else ''}:")
                lines.extend(f"  {p}" for p in more)
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = next((p.line for p in self.problems if p.line is not None), None)
        return self.path, (line - 1 if line else None), f"{self.path.name}: cannot be read"
