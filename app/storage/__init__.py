"""Storage: the database engine and session (database), the tables and the one door to a status
(models), retries of transient errors (retry), group commit, schema migrations (schema, migrations/)
and retention. Nothing here knows HTTP: it imports no Flask-RESTX, no request, and nothing of
app.api, app.services, app.runner or app.live."""
