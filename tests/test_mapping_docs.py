"""docs/mapping.md runs: its shell commands, in order, from a folder holding the example host
(its Python block runs with every page's, in tests/test_docs.py), and what it says they
print is what they print."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_docs import DOCS, ROOT, blocks

PAGE = DOCS / "mapping.md"


def test_the_mapping_page_commands_run_in_order(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples" / "crm", tmp_path / "examples" / "crm")
    commands = [text for _, _, text in blocks(PAGE, "sh")]
    assert len(commands) >= 6
    script = "set -euo pipefail\n" + "\n".join(commands)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    out = done.stdout
    # what the page says the first check prints, it prints
    line = next(
        i
        for i, text in enumerate((tmp_path / "typo.toml").read_text().splitlines(), 1)
        if 'source = "phone_call"' in text
    )
    assert f"typo.toml:{line}: record.calls.source: unknown source 'phone_calls'" in out
    assert f"typo.toml:{line}:" in PAGE.read_text(encoding="utf-8")
    assert "no column 'created'" in out
    assert "examples/crm/mapping.toml: agrees with the database" in out
    assert "applied:" in out and "GRANTED" in out
    assert " 0 failed" in (tmp_path / "scenarios.txt").read_text(encoding="utf-8")
    assert "FILL_IN" in (tmp_path / "draft.toml").read_text(encoding="utf-8")
    # the same mapping on a folder of CSV files
    assert "enquiry_ref,customer_id,channel,created_at" in out
    assert "FILL_IN" in (tmp_path / "csv-draft.toml").read_text(encoding="utf-8")
    assert " 0 failed" in (tmp_path / "csv-scenarios.txt").read_text(encoding="utf-8")
    assert out.count("applied:") == 2  # a sweep of the database, then of the folder
