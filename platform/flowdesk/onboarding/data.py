"""Historical data import: records of one entity from CSV, XLSX or JSON Lines.

`import_data` works in two passes, streaming, in constant memory but for the
keys seen (duplicate detection):

1. **Validation pass** (read only): every row is converted as the mapping says
   and checked as `RecordStore.create` would check it (formats, enum values,
   required fields, rules, broken references, duplicates of the key in the
   file and in the table, unique values); every problem goes to the report with
   its row and column. `dry_run=True` stops here. Otherwise each batch's checked
   records are spilled to a temporary file.
2. **Import pass**: the spilled batches, each in its own write transaction:
   what the checks read from the database is read again in bulk (lookups,
   referred records, existing keys; `BatchChecker.recheck`), rows whose reads
   changed are checked again from the start, the good rows are written in bulk
   (`_data_batch.write_batch`) and the import run (`fd_import_runs`) is advanced
   to the batch's last source row in the same transaction. A killed or failed
   run therefore resumes (`resume=RUN_ID`) after its last committed batch, with
   no row written twice. Rows refused by the validation pass are not retried.

Imported records keep their mapped `number`, `created_at` and workflow `state`,
carry a `create` audit row commented `imported from <file> row N`, and start no
workflow, automation or notification (the workflow engine is not involved).

May import: `flowdesk.model`, `flowdesk.store`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, select, update

from flowdesk.model.appmodel import AppModel
from flowdesk.store import platform_tables as pt
from flowdesk.store.engine import read_only
from flowdesk.store.records import Actor, RecordStore

from ._data_batch import BatchChecker, Prepared, write_batch
from ._data_read import SourceError, file_hash, read_rows, source_columns
from ._data_report import ReportFile
from ._data_rows import Converted, RowConverter, RowProblem
from ._mapping import DataMapping, MappingError, MappingProblem, load_mapping

__all__ = [
    "IMPORT_ACTOR",
    "DataImportError",
    "ImportSummary",
    "MappingError",
    "SourceError",
    "import_data",
    "load_mapping",
]

IMPORT_ACTOR = Actor(None, "import")
"""Who imported records appear as on their timeline, unless a user is given."""

Progress = Callable[[str, int, int], None]
"""(phase, rows read, records imported); phase `run` gives the run id (as rows) first."""


class DataImportError(Exception):
    """The import cannot start or continue (unknown run, another file, a failed batch)."""


@dataclass
class ImportSummary:
    """What an import did; also the summary of the JSON report."""

    app: str
    entity: str
    source: str
    dry_run: bool
    run_id: int | None = None
    rows: int = 0  # data rows read in the validation pass (after a resume point)
    skipped: int = 0  # rows at or before the resume point
    bad: int = 0  # rows with a problem
    imported: int = 0  # records written by this call
    status: str = "validated"
    codes: dict[str, int] = field(default_factory=dict)  # problems by code
    bad_rows: list[int] = field(default_factory=list)  # first 1,000 bad rows

    @property
    def good(self) -> int:
        return self.rows - self.bad

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app, "entity": self.entity, "source": self.source,
            "dry_run": self.dry_run, "run_id": self.run_id, "status": self.status,
            "rows": self.rows, "skipped": self.skipped, "good": self.good, "bad": self.bad,
            "imported": self.imported, "problems_by_code": dict(sorted(self.codes.items())),
        }  # fmt: skip


def import_data(
    engine: Engine,
    app: AppModel,
    entity: str,
    path: Path,
    mapping: DataMapping,
    *,
    dry_run: bool = False,
    batch_size: int = 500,
    resume: int | None = None,
    report: Path | None = None,
    actor: Actor = IMPORT_ACTOR,
    progress: Progress | None = None,
) -> ImportSummary:
    """Validate `path`, then (unless `dry_run`) import its good rows in batches.

    Raises:
        MappingError: the mapping does not fit the entity or the file's columns.
        SourceError: the file cannot be read.
        DataImportError: unknown entity or run, a resumed run's file changed, or a
            batch failed (the run is marked failed and can be resumed).
    """
    if entity not in app.entities:
        known = ", ".join(app.entities)
        raise DataImportError(f"{app.name} has no entity `{entity}` (entities: {known})")
    if batch_size < 1:
        raise DataImportError("the batch size must be at least 1")
    converter = _converter(app, entity, mapping, path)
    digest, mapping_digest = file_hash(path), _mapping_hash(mapping)
    run = _resumed(engine, resume, app.name, entity, digest, mapping_digest) if resume else None
    start = run["last_row"] if run else 0
    summary = ImportSummary(app.name, entity, path.name, dry_run, run_id=resume)
    store = RecordStore(engine, app)
    sink = ReportFile(report) if report else None
    spill = None if dry_run else tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    try:
        bad = _validate(store, converter, path, start, batch_size, actor, summary, sink,
                        progress, spill)  # fmt: skip
        if spill is not None:
            summary.run_id = run["id"] if run else _start_run(
                engine, app.name, entity, path.name, digest, mapping_digest, batch_size, actor
            )
            if progress:
                progress("run", summary.run_id, 0)
            _import(store, converter, path.name, actor, summary, bad, sink, progress, spill)
    finally:
        if spill is not None:
            spill.close()
        if sink is not None:
            sink.close(summary.as_dict())
    return summary


# --------------------------------------------------------------------------- set-up


def _converter(app: AppModel, entity: str, mapping: DataMapping, path: Path) -> RowConverter:
    converter = RowConverter(app, entity, mapping)
    problems = list(converter.problems)
    header = source_columns(path)
    if header is not None:
        for column in mapping.columns:
            if column not in header:
                pointer = "/columns/" + column.replace("~", "~0").replace("/", "~1")
                line, col = mapping.position(pointer)
                shown = ", ".join(c for c in header if c) or "none"
                problems.append(MappingProblem(mapping.source, line, col, pointer,
                                               f"{path.name} has no column `{column}` "
                                               f"(its columns: {shown})"))
    if problems:
        raise MappingError(problems)
    return converter


def _mapping_hash(mapping: DataMapping) -> str:
    return hashlib.sha256(mapping.model_dump_json().encode()).hexdigest()


def _resumed(engine: Engine, run_id: int, app: str, entity: str, digest: str,
             mapping_digest: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(pt.import_runs).where(pt.import_runs.c.id == run_id)).first()
    if row is None:
        raise DataImportError(f"there is no import run {run_id}")
    run = dict(row._mapping)
    if (run["app"], run["entity"]) != (app, entity):
        raise DataImportError(f"import run {run_id} imported {run['app']} {run['entity']}, "
                              f"not {app} {entity}")
    if run["file_hash"] != digest:
        raise DataImportError(f"import run {run_id} read another file (its sha256 was "
                              f"{run['file_hash'][:12]}...); resume it with the same file")
    if run["mapping_hash"] != mapping_digest:
        raise DataImportError(f"import run {run_id} used another mapping; resume it with "
                              "the same mapping")
    if run["status"] == "done":
        raise DataImportError(f"import run {run_id} is already done ({run['imported']} "
                              "records imported)")
    return run


def _start_run(engine: Engine, app: str, entity: str, source: str, digest: str,
               mapping_digest: str, batch_size: int, actor: Actor) -> int:
    now = dt.datetime.now(dt.UTC)
    values = {
        "app": app, "entity": entity, "source": source, "file_hash": digest,
        "mapping_hash": mapping_digest, "status": "running", "batch_size": batch_size,
        "last_row": 0, "imported": 0, "rejected": 0, "actor": actor.username,
        "started_at": now, "updated_at": now,
    }  # fmt: skip
    with engine.begin() as conn:
        return int(conn.execute(pt.import_runs.insert(), values).inserted_primary_key[0])


# --------------------------------------------------------------------------- the passes


def _batches(converter: RowConverter, path: Path, start: int, size: int,
             summary: ImportSummary | None = None) -> Iterator[list[Converted]]:
    """Converted rows after `start`, `size` at a time (skipped ones counted in `summary`)."""
    batch: list[Converted] = []
    for row, cells in read_rows(path):
        if row <= start:
            if summary is not None:
                summary.skipped += 1
            continue
        batch.append(converter.convert(row, cells))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _validate(store: RecordStore, converter: RowConverter, path: Path, start: int, size: int,
              actor: Actor, summary: ImportSummary, sink: ReportFile | None,
              progress: Progress | None, spill: IO[bytes] | None) -> set[int]:
    """The read-only pass: every problem reported; the bad rows' numbers returned.

    With `spill`, each batch's good rows (checked records) are written to it, with
    the batch's last source row, for the import pass: it then re-reads only what
    the checks read from the database, not the file (`BatchChecker.recheck`).
    """
    checker = BatchChecker(store, converter, actor)
    bad: set[int] = set()
    reader = read_only(store.engine) if store.dialect == "sqlite" else store.engine
    with reader.connect() as conn:
        for batch in _batches(converter, path, start, size, summary):
            good, problems = checker.check(conn, batch, dt.datetime.now(dt.UTC))
            conn.rollback()  # a short read transaction per batch
            if spill is not None:
                pickle.dump((batch[-1].row, len(batch), good), spill, pickle.HIGHEST_PROTOCOL)
            summary.rows += len(batch)
            _record_problems(problems, "validate", summary, bad, sink)
            if progress:
                progress("validate", summary.rows, 0)
    return bad


def _spilled(spill: IO[bytes]) -> Iterator[tuple[int, int, list[Prepared]]]:
    spill.seek(0)
    while True:
        try:
            yield pickle.load(spill)
        except EOFError:
            return


def _import(store: RecordStore, converter: RowConverter, source: str, actor: Actor,
            summary: ImportSummary, bad: set[int], sink: ReportFile | None,
            progress: Progress | None, spill: IO[bytes]) -> None:
    """The write pass: one transaction per batch of the validation pass's good rows,
    checked again against the database, written, and the run advanced in it."""
    checker = BatchChecker(store, converter, actor)
    runs = pt.import_runs
    done = 0
    try:
        for last_row, rows, checked in _spilled(spill):
            now = dt.datetime.now(dt.UTC)
            with store.transaction() as conn:
                good, problems = checker.recheck(conn, checked, now)
                write_batch(conn, store, converter.entity_name, good, source=source,
                            actor=actor, now=now)
                late = [p for p in problems if p.row not in bad]
                conn.execute(update(runs).where(runs.c.id == summary.run_id).values(
                    last_row=last_row, imported=runs.c.imported + len(good),
                    rejected=runs.c.rejected + len(_bad_rows_in(problems)), updated_at=now))
            summary.imported += len(good)
            done += rows
            _record_problems(late, "import", summary, bad, sink)
            if progress:
                progress("import", done, summary.imported)
    except Exception as error:
        _finish(store.engine, summary.run_id, "failed", f"{type(error).__name__}: {error}")
        raise DataImportError(f"import run {summary.run_id} stopped: {type(error).__name__}: "
                              f"{error}; fix the cause and resume with --resume "
                              f"{summary.run_id}") from error
    summary.status = "done"
    _finish(store.engine, summary.run_id, "done", None)


def _bad_rows_in(problems: Iterable[RowProblem]) -> set[int]:
    return {problem.row for problem in problems}


def _record_problems(problems: Iterable[RowProblem], phase: str, summary: ImportSummary,
                     bad: set[int], sink: ReportFile | None) -> None:
    for problem in problems:
        summary.codes[problem.code] = summary.codes.get(problem.code, 0) + 1
        if problem.row not in bad:
            bad.add(problem.row)
            summary.bad += 1
            if len(summary.bad_rows) < 1000:
                summary.bad_rows.append(problem.row)
        if sink is not None:
            sink.write(problem, phase)


def _finish(engine: Engine, run_id: int | None, status: str, error: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    runs = pt.import_runs
    with engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(
            status=status, error=error, updated_at=now,
            finished_at=now if status == "done" else None))
