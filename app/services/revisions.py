"""Code history: revisions written in the autosave's own transaction, coalesced while the learner types.

The session's newest "typing" revision is *live*: it keeps no code of its own (its code, version,
size and files are the session's current ones), so a keystroke's save writes nothing here and
costs the autosave one read under the write lock it takes anyway. A save that ends the burst (a
pause of REVISION_PAUSE_SECONDS since the last save, a burst older than REVISION_MAX_AGE_SECONDS,
a paste, a restore) first seals the live revision with the session's code as it still is, then
starts a new revision; a run seals it as "run". Sealed revisions never change, so the revision a
run pinned holds exactly what ran.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, Dialect, Row, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import UpdateBase

from ..storage import models
from ..storage.retry import retrying
from ..errors import APIError
from ..storage.database import db
from ..storage.models import CodeRevision, CodeSession

_TABLE = CodeRevision.__table__
_SESSIONS = CodeSession.__table__

# the session's newest revision: an index lookup on (session_id, revision)
_HEAD_ID = (
    select(_TABLE.c.id)
    .where(_TABLE.c.session_id == bindparam("of_session"))
    .order_by(_TABLE.c.revision.desc())
    .limit(1)
    .scalar_subquery()
)
# what a save needs to decide, read with the session's row locked (PostgreSQL; SQLite holds its
# write lock from BEGIN IMMEDIATE): the head, whether it is live, when its burst began, the last save
_BEFORE_SAVE = (
    select(
        _TABLE.c.id.label("head_id"),
        _TABLE.c.source_code.label("head_code"),
        _TABLE.c.created_at.label("head_created_at"),
        _SESSIONS.c.updated_at.label("last_save_at"),
    )
    .select_from(_SESSIONS.outerjoin(_TABLE, _TABLE.c.id == _HEAD_ID))
    .where(_SESSIONS.c.id == bindparam("of_session"))
    .with_for_update(of=_SESSIONS)
)
_SESSION_NOW = select(_SESSIONS).where(_SESSIONS.c.id == bindparam("of_session")).with_for_update()
_SEAL = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("head_id"), _TABLE.c.source_code.is_(None))
    .values(
        source_code=bindparam("new_code"),
        version=bindparam("new_version"),
        files=bindparam("new_files"),
        size_bytes=bindparam("new_size"),
        updated_at=bindparam("sealed_at"),
        reason=bindparam("new_reason"),
    )
)
_HEAD = select(_TABLE.c.id, _TABLE.c.revision, _TABLE.c.version, _TABLE.c.source_code, _TABLE.c.files).where(_TABLE.c.id == _HEAD_ID)
_LAST_NUMBER = select(func.max(_TABLE.c.revision)).where(_TABLE.c.session_id == bindparam("of_session"))
_INSERT = insert(_TABLE)
_TRIM = delete(_TABLE).where(
    _TABLE.c.session_id == bindparam("of_session"), _TABLE.c.revision <= bindparam("oldest_dropped")
)


@dataclass(frozen=True)
class RevisionView:
    """A revision as the API shows it: a live one with its session's current code."""

    revision: int
    version: int
    created_at: datetime
    size_bytes: int
    reason: str
    source_code: str
    files: str | None


def files_of(row: object) -> str | None:
    """The session's files as JSON text, when its table has them (multi-file sessions); else None."""
    files = getattr(row, "files", None)
    if files is None or isinstance(files, str):
        return files
    return json.dumps(files, ensure_ascii=False)


def lock_and_decide(connection: Connection, session_id: str, reason: str, now: datetime) -> bool:
    """Before a save's UPDATE, with the write lock held: seal the live revision if this save ends
    its burst; True if the save then needs a revision of its own (after_save)."""
    _begin_immediate(connection)
    head = fetch_one(connection, _BEFORE_SAVE, {"of_session": session_id})
    if head is None:
        # no such session (or not the caller's): the UPDATE will match nothing either
        return False
    live = head.head_id is not None and head.head_code is None
    if live and reason == models.TYPING:
        config = current_app.config
        paused = head.last_save_at < now - timedelta(seconds=float(config["REVISION_PAUSE_SECONDS"]))
        aged = head.head_created_at < now - timedelta(seconds=float(config["REVISION_MAX_AGE_SECONDS"]))
        if not paused and not aged:
            # the common keystroke: the live revision already is this save
            return False
    if live:
        _seal(connection, session_id, head.head_id, models.TYPING)
    return True


def after_save(connection: Connection, saved: Row | FetchedRow, reason: str, now: datetime) -> None:
    """The save's own revision: a new live one for typing, else a sealed copy (paste, restore)."""
    keep = int(current_app.config["REVISIONS_KEPT_PER_SESSION"])
    if reason == models.TYPING:
        params = {"of_session": saved.id, "new_version": None, "new_code": None, "new_files": None, "new_size": None, "now": now}
    else:
        params = _sealed_params(saved, now)
    _append(connection, params, reason, keep)


def _sealed_params(session: Row | FetchedRow, now: datetime) -> dict[str, object]:
    return {
        "of_session": session.id,
        "new_version": session.version,
        "new_code": session.source_code,
        "new_files": files_of(session),
        "new_size": len(session.source_code.encode()),
        "now": now,
    }


def _seal(connection: Connection, session_id: str, head_id: int, reason: str) -> Row:
    """Give the live revision head_id the session's current code, as `reason`; returns the session row."""
    session = connection.execute(_SESSION_NOW, {"of_session": session_id}).first()
    params = _sealed_params(session, session.updated_at)
    connection.execute(_SEAL, {**params, "head_id": head_id, "sealed_at": session.updated_at, "new_reason": reason})
    return session


def _begin_immediate(connection: Connection) -> None:
    """SQLite: take the write lock now, so the reads that decide this save's revision are current
    (PostgreSQL locks the session's row in _BEFORE_SAVE instead)."""
    # a save of a group commit (app/storage/group_commit.py) after the first finds the lock already taken
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        _on_driver(connection, "BEGIN IMMEDIATE", ())


def fetch_one(connection: Connection, statement: Select | UpdateBase, params: dict[str, object]) -> FetchedRow | None:
    """statement's first row (a SELECT's, or an UPDATE's RETURNING), run on the transaction's own DBAPI cursor.

    The autosave's hot path: rendered once per dialect, a keystroke's revision check and its
    UPDATE cost the driver's execute, not SQLAlchemy's per-statement bookkeeping (profiled: that
    was 4/5 of it).
    """
    sql, names, processors, constants = _rendered(statement, connection.dialect)
    values = dict(constants)
    for name in names:
        if name not in constants:
            values[name] = processors[name](params[name]) if name in processors else params[name]
    row = _on_driver(connection, sql, tuple(values[name] for name in names) if connection.dialect.positional else values)
    if row is None:
        return None
    converters = _result_processors(statement, connection.dialect)
    return FetchedRow(**{name: convert(value) if convert else value for (name, convert), value in zip(converters, row)})


def _on_driver(connection: Connection, sql: str, parameters: tuple | dict) -> tuple | None:
    """Execute sql on the transaction's DBAPI cursor; its first row, if it returns rows."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchone() if cursor.description else None
    except connection.dialect.loaded_dbapi.Error as error:
        # as SQLAlchemy would raise it: app/storage/retry.py knows a lock or a conflict by these
        raise DBAPIError.instance(sql, parameters, error, connection.dialect.loaded_dbapi.Error) from error
    finally:
        cursor.close()


class FetchedRow(dict):
    """A fetched row whose columns read as attributes."""

    __getattr__ = dict.__getitem__


@functools.cache
def _result_processors(statement: Select | UpdateBase, dialect: Dialect) -> tuple[tuple[str, Callable[[object], object] | None], ...]:
    """(name, the driver value's converter or None) per column: SQLite hands datetimes back as text."""
    return tuple((column.name, column.type.dialect_impl(dialect).result_processor(dialect, None)) for column in statement.exported_columns)


@functools.cache
def _rendered(
    statement: Select | UpdateBase, dialect: Dialect
) -> tuple[str, tuple[str, ...], dict[str, Callable[[object], object]], dict[str, object]]:
    """(SQL in the driver's parameter style, parameter names in order, bind processors by name,
    the statement's own literals already processed)."""
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or compiled.binds.keys())
    processors = {}
    constants = {}
    for name in names:
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if not bind.required:
            constants[name] = processor(bind.effective_value) if processor else bind.effective_value
        elif processor is not None:
            processors[name] = processor
    return compiled.string, names, processors, constants


def _append(connection: Connection, params: dict[str, object], reason: str, keep: int) -> int:
    """Insert the session's next revision and drop the oldest past `keep`; returns its number."""
    last = connection.execute(_LAST_NUMBER, {"of_session": params["of_session"]}).scalar() or 0
    number = last + 1
    connection.execute(
        _INSERT,
        {
            "session_id": params["of_session"],
            "revision": number,
            "version": params["new_version"],
            "source_code": params["new_code"],
            "files": params["new_files"],
            "size_bytes": params["new_size"],
            "reason": reason,
            "created_at": params["now"],
            "updated_at": params["now"],
        },
    )
    if keep and number > keep:
        connection.execute(_TRIM, {"of_session": params["of_session"], "oldest_dropped": number - keep})
    return number


def first(session: CodeSession) -> CodeRevision:
    """Revision 1 of a new session (added to the ORM session: committed with the session itself)."""
    return CodeRevision(
        session_id=session.id,
        revision=1,
        version=session.version or 1,
        source_code=session.source_code,
        files=files_of(session),
        size_bytes=len(session.source_code.encode()),
        reason=models.CREATE,
    )


def pin_for_run(session_id: str) -> tuple[int, str, str | None]:
    """(revision, its code, its other files as JSON text) to run now: the live revision sealed as
    "run", else the head if it holds the session's current version, else a new "run" revision of it.

    All under the write lock: no autosave can change the code between choosing it and sealing it.
    """

    def pin() -> tuple[int, str, str | None]:
        with db.engine.begin() as connection:
            _begin_immediate(connection)
            session = connection.execute(_SESSION_NOW, {"of_session": session_id}).first()
            if session is None:
                # deleted since the caller found it
                raise APIError("not_found", f"No code session {session_id}.", 404)
            head = connection.execute(_HEAD, {"of_session": session_id}).first()
            if head is not None and head.source_code is None:
                _seal(connection, session_id, head.id, models.RUN)
                return head.revision, session.source_code, files_of(session)
            if head is not None and head.version == session.version:
                return head.revision, head.source_code, head.files
            # a session from before history (or one whose head was trimmed): pin its code as it is
            params = _sealed_params(session, models.utcnow())
            number = _append(connection, params, models.RUN, int(current_app.config["REVISIONS_KEPT_PER_SESSION"]))
            return number, session.source_code, files_of(session)

    return retrying(pin)


def view(revision: CodeRevision, session: CodeSession) -> RevisionView:
    """The revision as the API shows it; a live one is the session's current code."""
    if revision.source_code is None:
        return RevisionView(
            revision.revision, session.version, revision.created_at, len(session.source_code.encode()),
            revision.reason, session.source_code, files_of(session),
        )
    return RevisionView(
        revision.revision, revision.version, revision.created_at, revision.size_bytes,
        revision.reason, revision.source_code, revision.files,
    )


def page(session: CodeSession, limit: int, offset: int) -> tuple[list[RevisionView], int]:
    """One page of the session's revisions, newest first, and how many it has."""
    of_session = CodeRevision.session_id == session.id
    total = db.session.scalar(select(func.count()).select_from(CodeRevision).where(of_session))
    rows = db.session.scalars(
        select(CodeRevision).where(of_session).order_by(CodeRevision.revision.desc()).limit(limit).offset(offset)
    ).all()
    return [view(row, session) for row in rows], total


# revision numbers are the database's integers: a larger one in a URL names nothing
MAX_REVISION = 2**31 - 1


def get(session: CodeSession, number: int) -> RevisionView:
    revision = None
    if 1 <= number <= MAX_REVISION:
        revision = db.session.scalar(
            select(CodeRevision).where(CodeRevision.session_id == session.id, CodeRevision.revision == number)
        )
    if revision is None:
        raise APIError("not_found", f"The session has no revision {number} (or it is past retention).", 404)
    return view(revision, session)
