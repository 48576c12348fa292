"""The records counted as interactions (the retention fixpoint), worked out once per stretch
of time and reused at later instants of it, are the records a fresh fixpoint finds at each."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fairproc import Engine, Policy, Record, World, load_policy
from fairproc.retention import counted_at, fixpoint, timeline_only
from fairproc.testing import strategies as fst
from fairproc.world import Ctx

POLICY: Policy = load_policy("flexioffices")
MICROSECOND = dt.timedelta(microseconds=1)


@settings(max_examples=150, deadline=None)
@given(fst.worlds(POLICY), st.data())
def test_a_stretch_reused_gives_the_fixpoint_of_every_instant(
    world: Any, data: st.DataObject
) -> None:
    assert timeline_only(POLICY)
    reused = Engine(POLICY, world)  # one history per subject, asked at one instant after another
    subjects = sorted({r.subject for r in world.records} | {e.subject for e in world.events})
    for subject in subjects:
        history = reused.history(subject)
        firsts = data.draw(st.lists(fst.instants_for(POLICY, world), min_size=1, max_size=4))
        instants: list[dt.datetime] = []
        for at in firsts:
            # the due dates the passes compared with, and either side of each: where a
            # stretch ends
            dates: list[float] = []
            fixpoint(Engine(POLICY, world).history(subject), at, dates)
            edges = [dt.datetime.fromtimestamp(d, dt.UTC) for d in dates]
            instants.extend([at, *(e + k * MICROSECOND for e in edges for k in (-1, 0, 1))])
        for at in data.draw(st.permutations(instants)):
            fresh = Engine(POLICY, world).history(subject)
            expected, _ = fixpoint(fresh, at)
            assert history.counted(Ctx(at, history)) == expected, (subject, at)


def test_a_policy_whose_retention_reads_the_instant_is_worked_out_at_every_instant(
    tmp_path: Path,
) -> None:
    """``at`` read by a retention condition: no stretch is ever reused."""
    folder = tmp_path / "policy"
    shutil.copytree(Path(POLICY.path or ""), folder, ignore=shutil.ignore_patterns("scenarios"))
    rules = folder / "retention.toml"
    text = rules.read_text(encoding="utf-8")
    reads_at = 'when = "subject.office_let is not None and at > subject.office_let"'
    rules.write_text(text.replace('when = "subject.office_let is not None"', reads_at), "utf-8")
    policy = load_policy(folder)
    assert not timeline_only(policy)
    collected = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    record = Record("h1", "ada", "handbook_download", collected, {"email": "ada@example.com"})
    history = Engine(policy, World([record])).history("ada")
    assert counted_at(history, collected + dt.timedelta(days=1)) == frozenset({"h1"})
    assert ("counted", "span") not in history.memo
