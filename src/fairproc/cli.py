"""The ``fairproc`` command line: lint a policy, run scenarios, explain one decision.

Exit statuses: 0 success; 1 the checked thing failed (lint errors, failed expectations);
2 an input could not be read (a policy, a scenario file, a bad option).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from fairproc.clock import parse_instant
from fairproc.errors import FairprocError, ProblemsError
from fairproc.scenarios.asks import ASKS, explainable

FORMATS = ["text", "json", "junit", "markdown", "html"]


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(2)


def _instant(value: str | None, what: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value, what)
    except ProblemsError as exc:
        raise click.BadParameter(exc.problems[0].message) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fairproc")
def main() -> None:
    """fairproc: a privacy notice as executable, testable, explainable rules."""


@main.command("lint")
@click.argument("policy", default="flexioffices")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--against",
    "against",
    metavar="LAW",
    help="Lint the notice beneath a law layer (e.g. uk-gdpr): findings quote both texts.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    default="error",
    show_default=True,
    help="Exit 1 when a finding of this severity or above is found.",
)
@click.option(
    "--at",
    "at",
    metavar="DATE",
    help="Judge safeguards as of this date (YYYY-MM-DD) instead of as they stand.",
)
def lint_cmd(policy: str, fmt: str, fail_on: str, at: str | None, against: str | None) -> None:
    """Report findings about POLICY itself (a shipped name or a folder)."""
    from fairproc.lint import at_least, lint
    from fairproc.loader import load_policy

    try:
        loaded = load_policy(policy)
    except FairprocError as exc:
        _fail(str(exc))
        return
    day = None
    if at is not None:
        try:
            day = dt.date.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(
                f"expected YYYY-MM-DD, got {at!r}", param_hint="--at"
            ) from None
    if against is not None:
        _lint_against(loaded, against, day, fmt, fail_on)
        return
    findings = lint(loaded, day)
    if fmt == "markdown":
        raise click.BadParameter("markdown is for --against", param_hint="--format")
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "policy": loaded.id,
                    "findings": [
                        {
                            "code": f.code,
                            "severity": f.severity,
                            "message": f.message,
                            "rule": f.rule,
                            "clause": f.clause,
                        }
                        for f in findings
                    ],
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        for f in findings:
            click.echo(str(f))
        counts = {
            s: sum(1 for f in findings if f.severity == s) for s in ("error", "warning", "info")
        }
        click.echo(
            f"{loaded.id}: {counts['error']} errors, {counts['warning']} warnings, "
            f"{counts['info']} notes"
        )
    sys.exit(1 if at_least(findings, fail_on) else 0)


def _lint_against(policy: Any, against: str, day: dt.date | None, fmt: str, fail_on: str) -> None:
    from fairproc.law import load_law
    from fairproc.law_lint import lint_against, render

    try:
        law = load_law(against)
    except FairprocError as exc:
        _fail(str(exc))
        return
    findings = lint_against(policy, law, day)
    click.echo(render(findings, policy, law, fmt))
    floor = ("info", "warning", "error").index(fail_on)
    failing = [f for f in findings if ("info", "warning", "error").index(f.severity) >= floor]
    sys.exit(1 if failing else 0)


@main.group("scenarios")
def scenarios_group() -> None:
    """Run documented rule scenarios (see docs/scenarios.md)."""


@scenarios_group.command("run")
@click.argument(
    "paths", nargs=-1, required=True, metavar="PATHS...", type=click.Path(path_type=Path)
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Run on this storage adapter instead of a fresh in-memory store.",
)
@click.option(
    "--coverage",
    "show_coverage",
    is_flag=True,
    help="Also print which policy rules no passing expectation cites.",
)
@click.option("-v", "--verbose", is_flag=True, help="Explain passing expectations too.")
@click.option(
    "--map",
    "map_path",
    metavar="MAPPING",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --store: load each world into the host's own tables through this mapping.",
)
@click.option(
    "--law",
    "law",
    metavar="LAW",
    help="Run every scenario beneath this law layer (e.g. uk-gdpr), as `law =` in a file.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Append each decision to this decision log (JSON lines; see `fairproc log`).",
)
def scenarios_run(
    paths: Sequence[Path],
    fmt: str,
    store_url: str | None,
    show_coverage: bool,
    verbose: bool,
    output: Path | None,
    log_path: Path | None,
    law: str | None,
    map_path: Path | None = None,
) -> None:
    """Run the scenario files in PATHS: files, folders searched for *.toml, or a shipped
    policy's name (its scenarios, installed with fairproc).

    Exit status 0 when every expectation passed, 1 when some failed, 2 when a file could not
    be read (the others still run).
    """
    from fairproc import reports, scenarios
    from fairproc.errors import did_you_mean
    from fairproc.loader import shipped_policies, shipped_scenarios

    found = []
    for path in paths:
        shipped = None if path.exists() else shipped_scenarios(str(path))
        if not path.exists() and shipped is None:
            names = shipped_policies()
            _fail(
                f"{path}: no such file or folder, nor a shipped policy's name"
                f"{did_you_mean(str(path), names)} (shipped: {', '.join(names) or 'none'})"
            )
        found.append(shipped or path)
    paths = found
    factory = scenarios.memory_store
    if map_path is not None:
        factory = _mapped_factory(store_url, map_path)
    elif store_url is not None:
        factory = _store_factory(store_url)
    if log_path is not None:
        from fairproc.decision_log import DecisionLog

        with DecisionLog(log_path) as log:
            results = scenarios.run_paths(paths, factory, log, law=law)
    else:
        results = scenarios.run_paths(paths, factory, law=law)
    if not results:
        _fail("no scenario files found (a scenario file is a *.toml file with a [scenario] table)")
    if fmt == "text":
        text = reports.render_text(
            results, verbose=verbose, color=output is None and sys.stdout.isatty()
        )
    elif fmt == "html":
        from fairproc.reports_html import render_html

        text = render_html(results)
    else:
        text = reports.RENDERERS[fmt](results)
    if show_coverage:
        cover = reports.render_coverage(results)
        if fmt == "text":
            text += "\n" + cover
        else:
            click.echo(cover, err=True)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(reports.summary_line(results), err=True)
    else:
        click.echo(text)
    sys.exit(scenarios.exit_status(results))


def _store_factory(url: str) -> Any:
    from fairproc.scenarios import UrlStores

    try:
        return UrlStores(url)
    except FairprocError as exc:
        _fail(str(exc))


@main.command("explain")
@click.argument("ask", type=click.Choice(explainable()))
@click.option(
    "--scenario",
    "scenario_file",
    type=click.Path(path_type=Path, exists=True),
    help="Read the world (records, events) and the clock from this scenario file.",
)
@click.option("--policy", help="The policy, when no scenario file names it.")
@click.option("--record", help="Record id (may_process, route, may_share, retention).")
@click.option("--subject", help="Subject id (may_email).")
@click.option("--purpose", help="Purpose id (may_process).")
@click.option("--recipient", help="Recipient id (may_share, transfer).")
@click.option("--court-order", is_flag=True, help="A court order requires disclosure.")
@click.option(
    "--at",
    "at",
    metavar="WHEN",
    help="ISO 8601 instant with an offset; defaults to the scenario's now.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--law", "law", metavar="LAW", help="Decide beneath this law layer (e.g. uk-gdpr).")
@click.option("--store", "store_url", metavar="URL", help="With --map: the host's database.")
@click.option(
    "--map",
    "map_path",
    metavar="MAPPING",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Decide on the host's own tables at --store, read through this mapping.",
)
def explain_cmd(
    ask: str,
    scenario_file: Path | None,
    policy: str | None,
    record: str | None,
    subject: str | None,
    purpose: str | None,
    recipient: str | None,
    court_order: bool,
    at: str | None,
    fmt: str,
    law: str | None,
    store_url: str | None = None,
    map_path: Path | None = None,
) -> None:
    """Ask one question and print the decision with its full trace."""
    from fairproc.engine import Engine
    from fairproc.loader import load_policy
    from fairproc.scenarios import load_scenario
    from fairproc.world import World

    when = _instant(at, "--at")
    opened: Any = None  # a mapped store (--map), closed after the question
    try:
        if scenario_file is not None:
            scenario = load_scenario(scenario_file)
            loaded, world = scenario.policy, scenario.world()
            when = when or scenario.now
            law = law or scenario.law
        else:
            loaded, world = load_policy(policy or "flexioffices"), World()
        if map_path is not None:
            if store_url is None:
                raise click.UsageError("--map needs --store: the database holding its tables")
            world = opened = _open_store(store_url, map_path)
        if when is None:
            raise click.UsageError("give --at (or a --scenario whose now is the clock)")
        engine = Engine(loaded, world, law=law)
        question = ASKS[ask]
        given = {
            "record": record,
            "subject": subject,
            "purpose": purpose,
            "recipient": recipient,
            "court_order": court_order,
        }
        missing = [f"--{k}" for k in question.needs if given.get(k) is None]
        if missing:
            raise click.UsageError(f"{ask} needs {' and '.join(missing)}")
        args = {k: given[k] for k in question.params if given.get(k) is not None}
        decision, _ = question.ask(engine, args, when)
        assert decision is not None  # an explainable ask decides
    except FairprocError as exc:
        _fail(str(exc))
        return
    finally:
        if opened is not None:
            opened.close()
    click.echo(decision.to_json() if fmt == "json" else decision.explain())


def _open_store(url: str, mapping: Path | None = None) -> Any:
    """The existing store ``url`` names: sweep and request read a store, never create one.
    With ``mapping``: the host's own tables at ``url`` through it (fairproc's own tables for
    its audit log and suppression list are made there if absent)."""
    from fairproc.storage import open_store

    try:
        if mapping is not None:
            return _adapter("mapped_sql").open_mapped(url, mapping)
        return open_store(url, create=False)
    except FairprocError as exc:
        _fail(str(exc))


def _adapter(name: str) -> Any:
    """An adapter module, imported when a command needs it (as open_store does)."""
    import importlib

    return importlib.import_module(f"fairproc.adapters.{name}")


def _mapped_factory(url: str | None, mapping: Path) -> Any:
    if url is None:
        raise click.UsageError("--map needs --store: the database holding the host's tables")
    try:
        return _adapter("mapped_sql").MappedStores(url, mapping)
    except FairprocError as exc:
        _fail(str(exc))


_MAP_OPTION = click.option(
    "--map",
    "map_path",
    metavar="MAPPING",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Read and write the host's own tables through this mapping (docs/mapping.md).",
)


@main.command("sweep")
@click.option(
    "--store",
    "store_url",
    required=True,
    metavar="URL",
    help="The store to sweep (sqlite:///path, postgresql://..., csv:///folder).",
)
@click.option(
    "--at",
    "at",
    required=True,
    metavar="WHEN",
    help="The instant the sweep is for (ISO 8601 with an offset).",
)
@click.option("--policy", default="flexioffices", show_default=True)
@click.option(
    "--apply",
    "do_apply",
    is_flag=True,
    help="Delete (or anonymise) what is due; without it the sweep is a dry run.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help="Records per atomic batch of --apply (default: the store's; 1000 on SQL).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@_MAP_OPTION
def sweep_cmd(
    store_url: str,
    at: str,
    policy: str,
    do_apply: bool,
    batch_size: int | None,
    fmt: str,
    map_path: Path | None = None,
) -> None:
    """Find the records whose retention falls due at WHEN; with --apply, delete them in atomic
    batches, each record with an audit entry. Exit 0, or 2 on bad input."""
    from fairproc.engine import Engine
    from fairproc.loader import load_policy
    from fairproc.sweep import apply_sweep, plan_sweep

    when = _instant(at, "--at")
    assert when is not None
    store = _open_store(store_url, map_path)
    try:
        engine = Engine(load_policy(policy), store)
        show = fmt == "text" and sys.stderr.isatty()
        plan = plan_sweep(engine, when)
        applied = kept = gone = 0
        if do_apply and plan.items:
            with click.progressbar(
                length=len(plan.items), label="sweeping", file=sys.stderr, hidden=not show
            ) as bar:
                done = {"n": 0}

                def progress(count: int, total: int) -> None:
                    bar.update(count - done["n"])
                    done["n"] = count

                result = apply_sweep(engine, plan, batch_size, progress)
                applied, kept, gone = result.applied, result.kept, result.gone
    except FairprocError as exc:
        _fail(str(exc))
        return
    finally:
        store.close()
    if fmt == "json":
        click.echo(
            json.dumps({**plan.to_dict(), "applied": applied, "kept": kept, "gone": gone}, indent=2)
        )
        return
    counts = plan.counts()
    click.echo(
        f"sweep at {when.isoformat()}: {len(plan.items)} due of {plan.scanned} "
        f"candidates; {plan.review} for review" + ("" if do_apply else " (dry run)")
    )
    if counts:
        width = max(len(r) for r in counts)
        click.echo(f"  {'rule':<{width}}  due")
        for rule, n in sorted(counts.items()):
            click.echo(f"  {rule:<{width}}  {n}")
    if do_apply:
        # Each batch is decided again as it is written: what changed since the plan is said.
        since = f"; since the plan, {kept} now kept, {gone} already gone" if kept or gone else ""
        click.echo(f"applied: {applied} records{since}")


@main.command("request")
@click.argument("subject")
@click.argument("right")
@click.option("--store", "store_url", required=True, metavar="URL")
@click.option("--at", "at", required=True, metavar="WHEN", help="When the request was received.")
@click.option("--policy", default="flexioffices", show_default=True)
@click.option("--verified", is_flag=True, help="The requester's identity has been verified.")
@click.option("--complex", "complex_", is_flag=True, help="Complex: due in three months.")
@click.option(
    "--purpose",
    "purposes",
    multiple=True,
    help="Objection: a purpose objected to (repeat; none: every LI purpose).",
)
@click.option(
    "--correct",
    "corrections",
    multiple=True,
    metavar="RECORD.CATEGORY=VALUE",
    help="Rectification: a corrected value (repeat).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    help="Write exports (access copy, portable data) into this folder.",
)
@click.option("--law", "law", metavar="LAW", help="Decide beneath this law layer (e.g. uk-gdpr).")
@click.option("--identity-confirmed-at", metavar="WHEN", help="Law: when identity was confirmed.")
@click.option("--fee-received-at", metavar="WHEN", help="Law: when a fee was received.")
@click.option(
    "--clarification-requested-at", metavar="WHEN", help="Law: when clarification was asked for."
)
@click.option(
    "--clarification-received-at", metavar="WHEN", help="Law: when clarification was received."
)
@click.option(
    "--manifestly",
    type=click.Choice(["unfounded", "excessive"]),
    help="Law, Art 12(5): the request is manifestly unfounded or excessive.",
)
@click.option(
    "--manifest-action",
    type=click.Choice(["refuse", "charge"]),
    default="refuse",
    show_default=True,
    help="Law, Art 12(5): refuse the request, or charge a fee for it.",
)
@click.option(
    "--ground",
    type=click.Choice(
        [
            *("accuracy_contested", "unlawful_processing", "legal_claims", "objection_pending"),
            *("accuracy_verified", "legal_claims_resolved", "objection_verified", "withdrawn"),
        ]
    ),
    help="Law, Art 18(1): the ground of a restriction, or the end of one (docs/law.md).",
)
@click.option("--compelling-grounds", metavar="TEXT", help="Law, Art 21(1): grounds to continue.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@_MAP_OPTION
def request_cmd(
    subject: str,
    right: str,
    store_url: str,
    at: str,
    policy: str,
    verified: bool,
    complex_: bool,
    purposes: Sequence[str],
    corrections: Sequence[str],
    out: Path | None,
    fmt: str,
    law: str | None,
    identity_confirmed_at: str | None,
    fee_received_at: str | None,
    clarification_requested_at: str | None,
    clarification_received_at: str | None,
    manifestly: str | None,
    manifest_action: str,
    ground: str | None,
    compelling_grounds: str | None,
    map_path: Path | None = None,
) -> None:
    """Carry out a data-subject request: RIGHT is access, rectification, erasure, objection,
    restriction, portability or complaint. Prints the decision; exit 0, or 2 on bad input."""
    from fairproc.engine import Engine
    from fairproc.exports import write_exports
    from fairproc.loader import load_policy
    from fairproc.rights import LawTerms, access_report, request

    when = _instant(at, "--at")
    assert when is not None
    terms = LawTerms(
        identity_confirmed_at=_instant(identity_confirmed_at, "--identity-confirmed-at"),
        fee_received_at=_instant(fee_received_at, "--fee-received-at"),
        clarification_requested_at=_instant(
            clarification_requested_at, "--clarification-requested-at"
        ),
        clarification_received_at=_instant(
            clarification_received_at, "--clarification-received-at"
        ),
        manifestly=manifestly,
        manifest_action=manifest_action,
        ground=ground,
        compelling_grounds=compelling_grounds,
    )
    fixes: dict[str, dict[str, str]] = {}
    for item in corrections:
        target, sep, value = item.partition("=")
        record, dot, category = target.partition(".")
        if not sep or not dot or not record or not category:
            raise click.BadParameter(
                f"expected RECORD.CATEGORY=VALUE, got {item!r}", param_hint="--correct"
            )
        fixes.setdefault(record, {})[category] = value
    store = _open_store(store_url, map_path)
    try:
        engine = Engine(load_policy(policy), store, law=law)
        result = request(
            engine,
            subject,
            right,
            when,
            verified=verified,
            complex=complex_,
            purposes=list(purposes) or None,
            corrections=fixes or None,
            law=terms,
        )
    except FairprocError as exc:
        _fail(str(exc))
        return
    finally:
        store.close()
    written: list[Path] = []
    if out is not None and result.export is not None:
        # The subject id names the files, encoded: it never chooses where they go.
        texts = {".json": result.export_json() + "\n"}
        if right == "access":
            texts[".md"] = access_report(result.export)
        if right == "portability":
            texts[".csv"] = str(result.export["csv"])
        try:
            written = write_exports(out, subject, right, texts)
        except OSError as exc:
            _fail(f"--out {out}: cannot write the exports: {exc}")
    if fmt == "json":
        click.echo(
            json.dumps(
                {**result.decision.to_dict(), "written": [str(p) for p in written]}, indent=2
            )
        )
    else:
        click.echo(result.decision.explain())
        for path in written:
            click.echo(f"wrote {path}")


# --- export: the policy in the ecosystem's vocabularies (fairproc.interop) -------------------


@main.group("export")
def export_group() -> None:
    """Write a policy in another vocabulary: W3C DPV (JSON-LD) or a Fides manifest (YAML)."""


def _write_export(text: str, output: Path | None) -> None:
    """To standard output, or to ``output`` atomically (a temporary file beside it, renamed)."""
    if output is None:
        click.echo(text, nl=False)
        return
    import os
    import tempfile

    folder = output.parent if str(output.parent) else Path(".")
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{output.name}.", dir=folder)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, output)
    except OSError as exc:
        _fail(f"{output}: cannot be written: {exc}")


_EXPORT_OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file (replaced whole) instead of standard output.",
)


@export_group.command("dpv")
@click.argument("policy", default="flexioffices")
@_EXPORT_OUTPUT
@click.option(
    "--base",
    metavar="IRI",
    help="The IRI the policy's own nodes are named under (default urn:fairproc:POLICY:).",
)
def export_dpv_cmd(policy: str, output: Path | None, base: str | None) -> None:
    """POLICY as W3C DPV 2.3 JSON-LD: one dpv:Process per purpose, basis and source."""
    from fairproc.interop import dpv
    from fairproc.loader import load_policy

    try:
        text = dpv.dumps(dpv.export_dpv(load_policy(policy), base=base))
    except FairprocError as exc:
        _fail(str(exc))
        return
    _write_export(text, output)


@export_group.command("fides")
@click.argument("policy", default="flexioffices")
@_EXPORT_OUTPUT
def export_fides_cmd(policy: str, output: Path | None) -> None:
    """POLICY as a Fides system manifest (YAML): a privacy declaration per purpose and basis."""
    from fairproc.interop import fides
    from fairproc.loader import load_policy

    try:
        text = fides.dumps(load_policy(policy))
    except FairprocError as exc:
        _fail(str(exc))
        return
    _write_export(text, output)


@main.command("diff")
@click.argument("old")
@click.argument("new")
@click.option(
    "--scenarios",
    "scenario_paths",
    multiple=True,
    type=click.Path(path_type=Path, exists=True),
    help="Scenario files or folders to run under both (repeat); by default OLD's scenarios/.",
)
@click.option(
    "--worlds",
    default=100,
    show_default=True,
    type=click.IntRange(0),
    help="How many generated worlds to ask (0: scenarios only).",
)
@click.option("--seed", default=0, show_default=True, help="The generated worlds' seed.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(path_type=Path), help="Write the diff to this file."
)
def diff_cmd(
    old: str,
    new: str,
    scenario_paths: Sequence[Path],
    worlds: int,
    seed: int,
    fmt: str,
    output: Path | None,
) -> None:
    """List the decisions policy NEW takes differently from OLD (each a shipped name or a
    folder), grouped by rule, each group with a minimal example world. Exit 0 when no decision
    changes, 1 when some do, 2 on bad input."""
    from fairproc.diff import diff_policies, render_json, render_markdown
    from fairproc.loader import load_policy

    try:
        before, after = load_policy(old), load_policy(new)
    except FairprocError as exc:
        _fail(str(exc))
        return
    paths: list[Path] = list(scenario_paths)
    if not paths and before.path is not None and (Path(before.path) / "scenarios").is_dir():
        paths = [Path(before.path) / "scenarios"]
    result = diff_policies(before, after, scenarios=paths, worlds=worlds, seed=seed)
    text = render_json(result) if fmt == "json" else render_markdown(result)
    if output is not None:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"{len(result.changes)} decisions change", err=True)
    else:
        click.echo(text)
    sys.exit(1 if result.changes else 0)


@main.group("map")
def map_group() -> None:
    """Run fairproc on the host's own tables: check or draft a mapping (docs/mapping.md)."""


@map_group.command("check")
@click.argument("mapping", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--store", "store_url", required=True, metavar="URL", help="The host's database.")
@click.option("--policy", help="Check names against this policy (default: the mapping's).")
def map_check(mapping: Path, store_url: str, policy: str | None) -> None:
    """Reflect the database at --store and report every mismatch with MAPPING, each with its
    file and line. Exit 0 when they agree, 1 when not, 2 when the database cannot be read."""
    from fairproc.loader import load_policy

    try:
        check = _adapter("mapping_tools").check_mapping
        problems = check(mapping, store_url, load_policy(policy) if policy else None)
    except FairprocError as exc:
        _fail(str(exc))
        return
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", err=True)
        sys.exit(1)
    click.echo(f"{mapping}: agrees with the database")


@map_group.command("init")
@click.option("--store", "store_url", required=True, metavar="URL", help="The host's database.")
@click.option("--policy", default="flexioffices", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the draft to this file (refused if it exists) instead of standard output.",
)
def map_init(store_url: str, policy: str, output: Path | None) -> None:
    """Draft a mapping from the database at --store for a person to finish: every FILL_IN is
    a blank fairproc will not guess (a table's source, a naive column's zone)."""
    from fairproc.loader import load_policy

    try:
        text = _adapter("mapping_tools").draft_mapping(store_url, load_policy(policy))
    except FairprocError as exc:
        _fail(str(exc))
        return
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        with output.open("x", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        _fail(f"{output}: cannot write the draft: {exc.strerror or exc}")


@main.group("log")
def log_group() -> None:
    """Read and verify a decision log (written by Engine(..., log=DecisionLog(path)))."""


def _read_log(path: Path) -> Any:
    from fairproc.decision_log import read_log

    try:
        return read_log(path)
    except FairprocError as exc:
        _fail(str(exc))


@log_group.command("show")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def log_show(path: Path, fmt: str) -> None:
    """Print the decisions logged in PATH, one a line."""
    from fairproc.decision_log import show

    lines = _read_log(path)
    if fmt == "json":
        click.echo(json.dumps([line.data for line in lines], indent=2, ensure_ascii=False))
        return
    for text in show(lines):
        click.echo(text)
    click.echo(f"{len(lines)} decisions")


@log_group.command("verify")
@click.argument("path", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--policy",
    help="The policy to check the log against (a shipped name or a folder); by default the "
    "shipped policy the log's first line names.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Re-run each logged question whose inputs this store still holds as logged.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def log_verify(path: Path, policy: str | None, store_url: str | None, fmt: str) -> None:
    """Check PATH: its chain of line hashes, the policy version and content hash each line
    names, and (with --store) each decision re-run. Exit 0 when all holds, 1 when not, 2 on
    bad input."""
    from fairproc.decision_log import verify
    from fairproc.loader import load_policy

    lines = _read_log(path)
    if not lines:
        _fail(f"{path}: the log is empty")
    name = policy or str(lines[0].data["policy"].get("id"))
    try:
        loaded = load_policy(name)
    except FairprocError as exc:
        _fail(str(exc))
        return
    store = _open_store(store_url) if store_url is not None else None
    try:
        result = verify(lines, loaded, store)
    except FairprocError as exc:
        _fail(str(exc))
        return
    finally:
        if store is not None:
            store.close()
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        for problem in result.problems:
            click.echo(f"problem: {problem}")
        for verdict in result.verdicts:
            if verdict.status != "confirmed" or len(result.verdicts) <= 50:
                click.echo(f"line {verdict.line}: {verdict.status}: {verdict.detail}")
        counts = ", ".join(f"{n} {s}" for s, n in sorted(result.counts().items()))
        click.echo(
            f"{path}: {result.lines} decisions under {loaded.id} {loaded.info.version} "
            f"({loaded.digest}); {counts}; " + ("verified" if result.ok else "NOT verified")
        )
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
