"""Cron triggers: when an Automation with `trigger: {cron: ...}` runs, and the jobs
that make it run.

Cron expressions are read by `croniter` (5 fields; the linker rejects others)
in the app's timezone, on local wall-clock time, the way people read them:
`0 8 1 * *` in Asia/Shanghai is 08:00 Shanghai time on the 1st. Across DST:

* a time that does not exist (02:30 on the night the clocks go forward) runs
  at the moment the clocks jump (03:00 local), as Vixie cron does, and at most
  once (an hourly rule runs once at 03:00, not twice);
* a time that happens twice (01:30 on the night the clocks go back) runs once,
  at its first occurrence.

Each occurrence is one `cron` job with the idempotency key
`cron:<app>:<rule>:<instant in UTC>`, so any number of schedulers (every
worker, every process, every restart) enqueue it once. The `cron` handler
enqueues an `automation_run` job for the occurrence and then the next
occurrence, in its own transaction: the chain cannot break or fork. Missed
occurrences (no worker for a week) run once, late, not once each: the next
occurrence is computed from the later of the due time and now.

Running the rule's `when` and `do` is the automation engine's
(`flowdesk.engine.automations`, which takes over `automation_run` with
`register("automation_run", replace=True)` and adds its relative-trigger scans
to `app_schedulers`). The placeholder handler here, used when the engine is not
loaded, writes an `fd_audit` row (entity `@automation`, action
`automation_run`) saying which rule was due when.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import Connection, Engine, select

from flowdesk.model.appmodel import AppModel
from flowdesk.store import platform_tables as pt
from flowdesk.store.snapshots import SnapshotError, load_active

from .handlers import register
from .queue import Job, enqueue, utc_now

__all__ = [
    "AUDIT_ENTITY",
    "CronError",
    "Scheduled",
    "app_schedulers",
    "cron_key",
    "iter_runs",
    "next_run",
    "next_runs",
    "schedule_cron_jobs",
    "schedule_deployed_apps",
]

AUDIT_ENTITY = "@automation"  # fd_audit.entity of automation runs (never an identifier)
app_schedulers: list[Callable[[Connection, AppModel, dt.datetime | None], list[Scheduled]]] = []
"""More schedules `schedule_deployed_apps` keeps queued per app (later layers add theirs:
the automation engine's relative-trigger scans)."""
_log = logging.getLogger("flowdesk.jobs")


class CronError(ValueError):
    """A cron expression croniter cannot read, or a timezone zoneinfo does not know."""


# --------------------------------------------------------------------------- computing runs


def _zone(tz: str | dt.tzinfo) -> dt.tzinfo:
    if isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError) as error:
        raise CronError(f"`{tz}` is not an IANA timezone, e.g. Asia/Shanghai") from error


def _exists(wall: dt.datetime, zone: dt.tzinfo) -> bool:
    local = wall.replace(tzinfo=zone)
    return local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) == wall


def _gap_end(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """The instant (UTC) the clocks jumped over the non-existent local time `wall`.

    PEP 495: in a gap, fold=1 reads `wall` with the offset after the jump and
    fold=0 with the one before, so the jump lies between the two UTC readings;
    bisect to the second.
    """
    low = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    high = wall.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
    if high < low:
        low, high = high, low
    before = low.astimezone(zone).utcoffset()
    while high - low > dt.timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)


def iter_runs(cron: str, after: dt.datetime, tz: str | dt.tzinfo) -> Iterator[dt.datetime]:
    """The run instants of `cron` strictly after `after`, increasing, forever: aware
    datetimes in the local time of `tz` with that instant's UTC offset (a fixed
    offset, so comparisons and arithmetic are exact across DST changes).

    Raises:
        CronError: for an expression croniter does not accept or an unknown zone.
    """
    zone = _zone(tz)
    if after.tzinfo is None:
        raise ValueError(f"`after` must be an aware datetime, got {after!r}")
    # Occurrences are wall times; one whose instant is not after `after` (an
    # ambiguous time's second pass, a gap mapped onto its end) is skipped below.
    wall = after.astimezone(zone).replace(tzinfo=None, fold=0)
    try:
        walls = croniter(cron, wall)
    except (ValueError, KeyError) as error:  # CroniterError is a ValueError
        raise CronError(f"`{cron}` is not a cron schedule: {error}") from error
    last = after.astimezone(dt.UTC)
    while True:
        candidate = walls.get_next(dt.datetime)
        if _exists(candidate, zone):
            instant = candidate.replace(tzinfo=zone, fold=0).astimezone(dt.UTC)
        else:
            instant = _gap_end(candidate, zone)
        if instant > last:
            last = instant
            yield _fixed(instant, zone)


def _fixed(instant: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """`instant` in local time with its UTC offset as a fixed tzinfo. With the zone
    itself as tzinfo, Python compares and subtracts datetimes of one zone by wall
    clock and never finds a time in a repeated hour equal to one in another zone
    (PEP 495): both would bite callers exactly at the DST changes."""
    local = instant.astimezone(zone)
    return local.replace(tzinfo=dt.timezone(local.utcoffset()))  # type: ignore[arg-type]


def next_runs(
    cron: str, after: dt.datetime, tz: str | dt.tzinfo, count: int = 5
) -> list[dt.datetime]:
    """The next `count` runs of `cron` after `after` (see `iter_runs`)."""
    return list(islice(iter_runs(cron, after, tz), count))


def next_run(cron: str, after: dt.datetime, tz: str | dt.tzinfo) -> dt.datetime:
    """The first run of `cron` strictly after `after`, in `tz`."""
    return next(iter_runs(cron, after, tz))


# --------------------------------------------------------------------------- scheduling


@dataclass(frozen=True)
class Scheduled:
    """One cron occurrence that `schedule_cron_jobs` made sure is queued."""

    app: str
    rule: str
    run_at: dt.datetime
    job_id: int


def cron_key(app: str, rule: str, at: dt.datetime) -> str:
    """The idempotency key of one occurrence: every scheduler computes the same one."""
    return f"cron:{app}:{rule}:{at.astimezone(dt.UTC).isoformat()}"


def _timezone_of(app: AppModel) -> str:
    return getattr(app.manifest, "timezone", None) or "UTC"


def _cron_rules(app: AppModel) -> dict[str, str]:
    return {
        name: rule.trigger.cron
        for name, rule in app.automations.items()
        if rule.enabled and rule.trigger.cron is not None
    }


def _enqueue_occurrence(
    connection: Connection, app: str, rule: str, cron: str, tz: str, at: dt.datetime
) -> int:
    payload = {
        "app": app,
        "rule": rule,
        "cron": cron,
        "timezone": tz,
        "at": at.astimezone(dt.UTC).isoformat(),
    }
    return enqueue(
        connection, "cron", payload, run_at=at, idempotency_key=cron_key(app, rule, at)
    )


def schedule_cron_jobs(
    connection: Connection, app: AppModel, now: dt.datetime | None = None
) -> list[Scheduled]:
    """Make sure the next occurrence of each enabled cron rule of `app` is queued.

    Idempotent and safe to run from any number of processes at once (the
    occurrence's key makes a repeat a no-op); run it after a deploy and at worker
    start. A rule whose expression croniter rejects is logged and skipped (the
    linker rejects those before deploy).
    """
    at = now or utc_now()
    tz = _timezone_of(app)
    scheduled = []
    for rule, cron in sorted(_cron_rules(app).items()):
        try:
            when = next_run(cron, at, tz)
        except CronError as error:
            _log.error("app %s, automation %s: %s; not scheduled", app.name, rule, error)
            continue
        job_id = _enqueue_occurrence(connection, app.name, rule, cron, tz, when)
        scheduled.append(Scheduled(app.name, rule, when, job_id))
    return scheduled


def schedule_deployed_apps(engine: Engine, now: dt.datetime | None = None) -> list[Scheduled]:
    """`schedule_cron_jobs` for the active version of every deployed app.

    The worker calls this at start and then every minute, which is how a deploy
    that adds or changes a cron rule gets scheduled without the store layer
    knowing about jobs.
    """
    reader = engine.execution_options(flowdesk_read_only=True)  # no write lock on SQLite
    with reader.connect() as connection:
        names = connection.execute(
            select(pt.app_versions.c.app).where(pt.app_versions.c.active.is_(True)).distinct()
        ).scalars().all()
    scheduled: list[Scheduled] = []
    for name in sorted(names):
        try:
            app = load_active(reader, name)
        except SnapshotError as error:
            _log.error("app %s: cannot load its active version: %s", name, error)
            continue
        if app is None or not (_cron_rules(app) or app_schedulers):
            continue
        with engine.begin() as connection:
            scheduled.extend(schedule_cron_jobs(connection, app, now))
            for extra in app_schedulers:
                scheduled.extend(extra(connection, app, now))
    return scheduled


# --------------------------------------------------------------------------- handlers


def _current_rule(connection: Connection, payload: dict[str, Any]) -> tuple[str, str] | None:
    """(cron, timezone) of the rule as deployed now; the payload's own when the app has
    never been deployed (an app run straight from its folder); None when the active
    version no longer has the rule, disabled it or gave it another trigger."""
    try:
        app = load_active(connection, payload["app"])
    except SnapshotError as error:
        _log.warning("app %s: active version does not load (%s); using the job's copy",
                     payload["app"], error)
        app = None
    if app is None:
        return payload["cron"], payload["timezone"]
    cron = _cron_rules(app).get(payload["rule"])
    return None if cron is None else (cron, _timezone_of(app))


@register("cron")
def run_cron_occurrence(connection: Connection, job: Job) -> None:
    """One occurrence of a cron rule: queue the rule's run, then the next occurrence.

    An occurrence that no longer matches the deployed rule (its cron or timezone
    changed since it was queued) does not run; the chain continues on the rule as
    it is now. A removed or disabled rule ends the chain.
    """
    payload = dict(job.payload)
    app, rule = payload["app"], payload["rule"]
    at = dt.datetime.fromisoformat(payload["at"])
    current = _current_rule(connection, payload)
    if current is None:
        _log.info("app %s, automation %s: no longer a cron rule; schedule ends", app, rule)
        return
    cron, tz = current
    if next_run(cron, at - dt.timedelta(seconds=1), tz) == at:  # fixed offsets: exact
        enqueue(
            connection,
            "automation_run",
            {"app": app, "rule": rule, "trigger": "cron", "at": payload["at"]},
            run_at=at,
            idempotency_key=f"automation_run:{app}:{rule}:{payload['at']}",
        )
    else:
        _log.info("app %s, automation %s: %s is no longer an occurrence of `%s` (%s); skipped",
                  app, rule, payload["at"], cron, tz)
    following = next_run(cron, max(at, utc_now()), tz)
    _enqueue_occurrence(connection, app, rule, cron, tz, following)


@register("automation_run")
def record_automation_run(connection: Connection, job: Job) -> None:
    """Placeholder until the automation engine (issue 6) runs the rule's steps: an
    audit row saying which rule was due when, so scheduling is observable and
    testable now. Issue 6 replaces this handler (`register(..., replace=True)`)."""
    payload = dict(job.payload)
    connection.execute(
        pt.audit.insert().values(
            app=payload["app"],
            entity=AUDIT_ENTITY,
            record_id=job.id,
            action="automation_run",
            actor="flowdesk.jobs",
            at=utc_now(),
            changes={"rule": payload["rule"], "trigger": payload.get("trigger"),
                     "at": payload.get("at")},
            comment="automation due; its steps are not run yet (automation engine pending)",
        )
    )
