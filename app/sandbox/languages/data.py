"""SQL: the program is SQL text, run by sqlite3 against a fresh in-memory database."""
from __future__ import annotations

from . import Language

# -cmd reads the program first; what stdin holds is read after it, as more SQL. -box prints each
# result as a table; -bail stops at the first error with a non-zero exit
SQL = Language(
    name="sql",
    source_file="main.sql",
    run=("/usr/bin/sqlite3", "-bail", "-box", "-cmd", ".read {source}", ":memory:"),
    version_command=("/usr/bin/sqlite3", "--version"),
    memory_error_markers=("out of memory",),
    takes_args=False,
    smoke_program=".print OK\n",
    display_name="SQL (SQLite {major}.{minor})",
    template="CREATE TABLE greetings (message TEXT);\nINSERT INTO greetings VALUES ('Hello, world!');\nSELECT message FROM greetings;\n",
)
