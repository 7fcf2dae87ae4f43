"""Liveness and the state of the parts: database and run workers."""
from __future__ import annotations

from flask_restx import Namespace, Resource

from ..services import health
from .schemas import ERROR

PATH = "/health"
ns = Namespace("health", description="Is the engine serving, and how are its parts")


@ns.route("")
class Health(Resource):
    @ns.response(200, "Serving: the isolation and limits in force")
    @ns.response(503, "Not serving runs (sandbox refused or shutting down)")
    @ns.response(401, "AUTH_PROTECT_HEALTH is on and the bearer token is missing or bad", ERROR)
    def get(self):
        """Overall health, with the isolation in force (namespaces, cgroups, CPU limits, syscall filter, each language's start path: fork_server, warm or cold, and why), the compile cache, the live backbone between engine processes (live_backbone: transport postgresql_listen_notify, unix_datagram_sockets or null; state listening, reconnecting or off), and the diagnostics' pre-started linter sandboxes."""
        return health.overall()


@ns.route("/db")
class DatabaseHealth(Resource):
    @ns.response(200, "The database answers: its latency")
    @ns.response(503, "The database does not answer")
    @ns.response(401, "AUTH_PROTECT_HEALTH is on and the bearer token is missing or bad", ERROR)
    def get(self):
        """Database reachability and latency."""
        return health.database()


@ns.route("/workers")
class WorkerHealth(Resource):
    @ns.response(200, "Pool size, busy workers, queue depth, warm pool")
    @ns.response(503, "The database busy (Retry-After)", ERROR)
    @ns.response(401, "AUTH_PROTECT_HEALTH is on and the bearer token is missing or bad", ERROR)
    def get(self):
        """Run pool: size, busy, queue depth."""
        return health.workers()
