"""Code history: revisions written in the autosave's own transaction, coalesced while the learner types.

A save extends the session's head revision in place when it is "typing" too, the last save was
less than REVISION_PAUSE_SECONDS ago and the revision is younger than REVISION_MAX_AGE_SECONDS;
anything else (a pause, the age, a paste, a restore, a run pinning the head) starts a new one.
Only "typing" revisions are ever changed, so a revision a run pinned holds exactly what ran.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, Dialect, Row, Update, bindparam, delete, func, insert, select, update

from .. import models
from ..db_retry import retrying
from ..errors import APIError
from ..extensions import db
from ..models import CodeRevision, CodeSession

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
# the common case of a keystroke's save: one UPDATE, no read
_EXTEND = (
    update(_TABLE)
    .where(
        _TABLE.c.id == _HEAD_ID,
        _TABLE.c.reason == models.TYPING,
        _TABLE.c.updated_at >= bindparam("pause_cutoff"),
        _TABLE.c.created_at >= bindparam("age_cutoff"),
    )
    .values(
        version=bindparam("new_version"),
        source_code=bindparam("new_code"),
        files=bindparam("new_files"),
        size_bytes=bindparam("new_size"),
        updated_at=bindparam("now"),
    )
)
_LAST_NUMBER = select(func.max(_TABLE.c.revision)).where(_TABLE.c.session_id == bindparam("of_session"))
_INSERT = insert(_TABLE)
_TRIM = delete(_TABLE).where(
    _TABLE.c.session_id == bindparam("of_session"), _TABLE.c.revision <= bindparam("oldest_dropped")
)
# a run pins the head: a "typing" head becomes "run" and is never extended again
_PIN = update(_TABLE).where(_TABLE.c.id == _HEAD_ID, _TABLE.c.reason == models.TYPING).values(reason=models.RUN)
_HEAD = select(_TABLE.c.revision, _TABLE.c.version, _TABLE.c.source_code).where(_TABLE.c.id == _HEAD_ID)


def files_of(row: object) -> str | None:
    """The session's files as JSON text, when its table has them (multi-file sessions); else None."""
    files = getattr(row, "files", None)
    if files is None or isinstance(files, str):
        return files
    return json.dumps(files, ensure_ascii=False)


def record(connection: Connection, saved: Row, reason: str, now: datetime) -> None:
    """Write the revision of a save that just bumped the session to saved.version, on the save's connection."""
    config = current_app.config
    code = saved.source_code
    params = {
        "of_session": saved.id,
        "new_version": saved.version,
        "new_code": code,
        "new_files": files_of(saved),
        "new_size": len(code.encode()),
        "now": now,
    }
    if reason == models.TYPING:
        params["pause_cutoff"] = now - timedelta(seconds=float(config["REVISION_PAUSE_SECONDS"]))
        params["age_cutoff"] = now - timedelta(seconds=float(config["REVISION_MAX_AGE_SECONDS"]))
        if _execute_on_driver(connection, _EXTEND, params):
            return
    _append(connection, params, reason, int(config["REVISIONS_KEPT_PER_SESSION"]))


def _execute_on_driver(connection: Connection, statement: Update, params: dict[str, object]) -> int:
    """Run statement on the transaction's own DBAPI cursor; the rows it changed.

    The autosave's hot path: rendered once per dialect, a keystroke's revision costs the
    driver's execute, not SQLAlchemy's per-statement bookkeeping (profiled: that was 4/5 of it).
    """
    sql, names, processors, constants = _rendered(statement, connection.dialect)
    values = dict(constants)
    for name in names:
        if name not in constants:
            values[name] = processors[name](params[name]) if name in processors else params[name]
    cursor = connection.connection.cursor()
    try:
        if connection.dialect.positional:
            cursor.execute(sql, tuple(values[name] for name in names))
        else:
            cursor.execute(sql, values)
        return cursor.rowcount
    finally:
        cursor.close()


@functools.cache
def _rendered(
    statement: Update, dialect: Dialect
) -> tuple[str, tuple[str, ...], dict[str, Callable[[object], object]], dict[str, object]]:
    """(SQL in the driver's parameter style, parameter names in order, bind processors by name,
    the statement's own literals already processed)."""
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup or compiled.binds.keys())
    processors = {}
    constants = {}
    for name in names:
        bind = compiled.binds[name]
        processor = bind.type.bind_processor(dialect)
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


def pin_for_run(session_id: str) -> tuple[int, str]:
    """(revision, its code) to run now: the head revision, sealed so that later typing starts a new one.

    The seal comes first, so the write lock is held while the head and the session are read: no
    autosave can change the head between choosing it and sealing it.
    """

    def pin() -> tuple[int, str]:
        with db.engine.begin() as connection:
            connection.execute(_PIN, {"of_session": session_id})
            head = connection.execute(_HEAD, {"of_session": session_id}).first()
            session = connection.execute(select(_SESSIONS).where(_SESSIONS.c.id == session_id)).first()
            if head is not None and head.version == session.version:
                return head.revision, head.source_code
            # a session from before history (or one whose head was trimmed): pin its code as it is
            params = {
                "of_session": session_id,
                "new_version": session.version,
                "new_code": session.source_code,
                "new_files": files_of(session),
                "new_size": len(session.source_code.encode()),
                "now": models.utcnow(),
            }
            number = _append(connection, params, models.RUN, int(current_app.config["REVISIONS_KEPT_PER_SESSION"]))
            return number, session.source_code

    return retrying(pin)


def page(session_id: str, limit: int, offset: int) -> tuple[list[CodeRevision], int]:
    """One page of the session's revisions, newest first, and how many it has."""
    of_session = CodeRevision.session_id == session_id
    total = db.session.scalar(select(func.count()).select_from(CodeRevision).where(of_session))
    rows = db.session.scalars(
        select(CodeRevision).where(of_session).order_by(CodeRevision.revision.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def get(session_id: str, number: int) -> CodeRevision:
    revision = db.session.scalar(
        select(CodeRevision).where(CodeRevision.session_id == session_id, CodeRevision.revision == number)
    )
    if revision is None:
        raise APIError("not_found", f"The session has no revision {number} (or it is past retention).", 404)
    return revision
