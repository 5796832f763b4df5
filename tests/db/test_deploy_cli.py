"""The deploy verbs through the real command line (`python cli.py ...`), on a SQLite
file and, when available, on PostgreSQL: outputs, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_deploy import V1, V2, V3  # the same three versions as the API tests

ROOT = Path(__file__).resolve().parents[2]


def write_app(folder: Path, texts: dict[str, str]) -> Path:
    for name, text in texts.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def flowdesk(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_plan_deploy_versions(database_url: str, tmp_path: Path) -> None:
    v1 = write_app(tmp_path / "v1", V1)
    planned = flowdesk("plan", str(v1), url=database_url)
    assert planned.returncode == 0, planned.stderr
    assert "nothing deployed -> 1.0.0" in planned.stdout
    assert "safe         create table `helpdesk__ticket`" in planned.stdout

    deployed = flowdesk("deploy", str(v1), "--yes", "--actor", "ana", url=database_url)
    assert deployed.returncode == 0, deployed.stderr
    assert "deployed helpdesk to 1.0.0 (was nothing)" in deployed.stdout

    listed = flowdesk("versions", "helpdesk", url=database_url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("* 1.0.0 ") and "ana" in listed.stdout


def test_refusal_upgrade_and_rollback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/flowdesk.db"
    v1, v2, v3 = (write_app(tmp_path / n, t) for n, t in (("v1", V1), ("v2", V2), ("v3", V3)))
    assert flowdesk("deploy", str(v1), "--yes", url=url).returncode == 0

    refused = flowdesk("deploy", str(v3), "--yes", url=url)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: refusing 1 destructive change without --allow-destructive: "
        "drop column `helpdesk__ticket.legacy` (0 rows have a value)"
    ]

    upgraded = flowdesk("deploy", str(v2), "--yes", "--actor", "zoe", url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "rename `helpdesk__ticket.notes` to `summary`" in upgraded.stdout
    assert "backup of the database before the deploy: " in upgraded.stdout

    back = flowdesk("rollback", "helpdesk", "1.0.0", "--yes", "--allow-destructive", url=url)
    assert back.returncode == 0, back.stderr
    assert "destructive  drop column `helpdesk__ticket.channel`" in back.stdout
    assert "rolled back helpdesk to 1.0.0 (was 2.0.0)" in back.stdout


def test_errors_are_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/flowdesk.db"
    bad_map = flowdesk(
        "migrate-instances",
        "helpdesk",
        "--from",
        "1.0.0",
        "--to",
        "2.0.0",
        "--map",
        "triage",
        url=url,
    )
    assert bad_map.returncode == 2 and "Traceback" not in bad_map.stderr
    assert "--map takes OLD=NEW" in bad_map.stderr
    unknown = flowdesk("rollback", "helpdesk", "1.0.0", "--yes", url=url)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: version 1.0.0 of `helpdesk` was never deployed (deployed: none)"
    )
