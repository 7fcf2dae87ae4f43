"""Code sessions: create, read, autosave with optimistic locking (and its history), delete, and run."""
from __future__ import annotations

import functools
import json

from flask import current_app
from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.engine import Connection

from .. import auth, catalog
from ..storage.retry import retrying
from ..errors import APIError
from ..storage.database import db
from ..storage.group_commit import GroupCommit
from ..storage.models import PASTE, RESTORE, TYPING, CodeSession, Execution, new_id, utcnow
from . import executions, programs, revisions


def create(
    language: str = "python",
    source_code: str | None = None,
    template_code: str | None = None,
    files: dict[str, str] | None = None,
) -> CodeSession:
    checked = catalog.language_named(language)
    code = source_code if source_code is not None else (template_code or "")
    executions.check_size("source_code", code, "SOURCE_MAX_BYTES")
    files_json = programs.as_json(programs.check_files(files, checked))

    def insert() -> CodeSession:
        session = CodeSession(
            id=new_id(), language=language, source_code=code, files=files_json, version=1,
            owner_user_id=auth.current_user_id(),
        )
        db.session.add(session)
        db.session.add(revisions.first(session))
        db.session.commit()
        return session

    return retrying(insert)


def get(session_id: str) -> CodeSession:
    session = db.session.get(CodeSession, session_id)
    # another user's session answers exactly as an unknown id: its existence is not disclosed
    if session is None or not auth.visible_to_caller(session.owner_user_id):
        raise APIError("not_found", f"No code session {session_id}.", 404)
    return session


# the database's integer is 64-bit; a larger version can only be a client's mistake
MAX_VERSION = 2**63 - 1


def parse_version(value: object) -> int:
    """A version from the body or an If-Match header ("3", "\\"3\\"", W/"3")."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        text = str(value).strip()
        if text.startswith("W/"):
            text = text[2:]
        text = text.strip('"')
        # isdigit() alone admits "²" and other digits int() refuses
        number = int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else -1
    if not 0 <= number <= MAX_VERSION:
        raise APIError("invalid_version", f"Version {value!r} is not a whole number from 0 to {MAX_VERSION}.", 400)
    return number


# what a client may say made its save (PATCH "reason"); a restore is the engine's own
SAVE_REASONS = (TYPING, PASTE)


def autosave(session_id: str, changes: dict[str, object], expected_version: object | None, reason: str = TYPING) -> revisions.FetchedRow:
    """Apply changes and bump the version, atomically, with the revision that keeps it; a stale
    expected_version gets 409.

    Returns the saved row (the session's columns as attributes)."""
    values: dict[str, object] = {}
    if "language" in changes:
        values["language"] = catalog.language_named(str(changes["language"])).name
    if "source_code" in changes:
        executions.check_size("source_code", str(changes["source_code"]), "SOURCE_MAX_BYTES")
        values["source_code"] = changes["source_code"]
    if "files" in changes:
        # names are checked against the entry file of the language the session will have
        language = catalog.language_named(str(changes.get("language") or get(session_id).language))
        values["files"] = programs.as_json(programs.check_files(changes["files"], language))  # type: ignore[arg-type]
    params: dict[str, object] = {"session_id": session_id, "now": utcnow(), **values}
    if auth.enabled():
        # another user's session is not found: no row matches, and get() below answers 404
        params["user_id"] = auth.current_user_id()
    if expected_version is not None:
        params["expected_version"] = parse_version(expected_version)
    statement = _autosave_statement(frozenset(params))

    def save_on(connection: Connection) -> revisions.FetchedRow | None:
        # the same transaction: a save is never without its revision, nor a revision without its save
        needs_revision = revisions.lock_and_decide(connection, session_id, reason, params["now"])
        # on the driver's cursor, rendered once: SQLAlchemy's execute cost more than the UPDATE (profiled: ~250 of 300 us)
        saved = revisions.fetch_one(connection, statement, params)
        if saved is not None and needs_revision:
            revisions.after_save(connection, saved, reason, params["now"])
        return saved

    def save() -> revisions.FetchedRow | None:
        # Core on a connection of its own: the ORM session (and its connection bookkeeping) adds
        # nothing to one table statement, and cost more than the statement (profiled: 140 -> 83 us)
        with db.engine.begin() as connection:
            return save_on(connection)

    if db.engine.dialect.name == "sqlite":
        # one writer at a time: concurrent saves of this process share one transaction and commit
        saved = _group_commit().run(save_on)
    else:
        saved = retrying(save)
    if saved is None:
        current = get(session_id)
        raise APIError(
            "version_conflict",
            f"The session is at version {current.version}; reload it before saving.",
            409,
            current_version=current.version,
        )
    return saved


def _group_commit() -> GroupCommit:
    extensions = current_app.extensions
    group = extensions.get("autosave_group_commit")
    if group is None:
        # setdefault is atomic: two first saves at once share one
        group = extensions.setdefault("autosave_group_commit", GroupCommit(int(current_app.config["AUTOSAVE_GROUP_COMMIT_MAX"])))
    return group


@functools.cache
def _autosave_statement(names: frozenset[str]) -> Update:
    """The autosave's one conditional UPDATE ... RETURNING, for the bound parameters in names.

    Built once per shape: constructing the statement cost more than running it (profiled). On
    the table, not the ORM entity: the ORM's bulk-update path cost more than the statement itself.
    Two tabs saving at once cannot both pass the version check.
    """
    table = CodeSession.__table__
    condition = [table.c.id == bindparam("session_id")]
    if "user_id" in names:
        condition.append(table.c.owner_user_id == bindparam("user_id"))
    if "expected_version" in names:
        condition.append(table.c.version == bindparam("expected_version"))
    changed = {name: bindparam(name) for name in ("language", "source_code", "files") if name in names}
    return (
        update(table)
        .where(*condition)
        .values(version=table.c.version + 1, updated_at=bindparam("now"), **changed)
        .returning(*table.c)
    )


def delete(session_id: str) -> None:
    def remove() -> None:
        db.session.delete(get(session_id))
        db.session.commit()

    retrying(remove)


def list_executions(session_id: str, limit: int, offset: int) -> tuple[list[Execution], int]:
    get(session_id)
    query = select(Execution).where(Execution.session_id == session_id)
    total = db.session.scalar(select(db.func.count()).select_from(query.subquery()))
    page = db.session.scalars(query.order_by(Execution.queued_at.desc(), Execution.id).limit(limit).offset(offset)).all()
    return list(page), total


def list_revisions(session_id: str, limit: int, offset: int) -> tuple[list[revisions.RevisionView], int]:
    return revisions.page(get(session_id), limit, offset)


def get_revision(session_id: str, number: int) -> revisions.RevisionView:
    return revisions.get(get(session_id), number)


def restore(session_id: str, number: int, expected_version: object | None) -> revisions.FetchedRow:
    """Make the revision's code the session's next version (guarded like an autosave); history is kept."""
    revision = get_revision(session_id, number)
    changes: dict[str, object] = {"source_code": revision.source_code}
    if revision.files is not None and "files" in CodeSession.__table__.c:
        # as a PATCH body carries them
        changes["files"] = json.loads(revision.files)
    return autosave(session_id, changes, expected_version, RESTORE)


def run(
    session_id: str,
    stdin: str = "",
    idempotency_key: str | None = None,
    limits: dict[str, float | int] | None = None,
    args: list[str] | None = None,
    interactive: bool = False,
) -> tuple[Execution, bool]:
    """Queue a run of the session's current code, every file of it; (execution, created) where
    created is False for a replayed key.

    The execution records the revision it ran: the head revision, pinned (never extended again)."""
    session = get(session_id)
    existing = executions.find_by_idempotency_key(session_id, idempotency_key)
    if existing is not None:
        return existing, False
    number, code, files = revisions.pin_for_run(session_id)
    execution = executions.submit(
        session.language, code, stdin, session_id, idempotency_key,
        files=programs.from_json(files, {}), limits=limits, args=args,  # type: ignore[arg-type]
        interactive=interactive, revision=number,
    )
    return execution, True


def grade(session_id: str, test_suite_id: str) -> Execution:
    """Queue a graded run of the session's current code against a test suite, pinned to its revision."""
    session = get(session_id)
    number, code, files = revisions.pin_for_run(session_id)
    return executions.submit(
        session.language, code, "", session_id, files=programs.from_json(files, {}),  # type: ignore[arg-type]
        test_suite_id=test_suite_id, revision=number,
    )
