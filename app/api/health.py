"""Liveness and the state of the parts: database and run workers."""
from __future__ import annotations

from flask_restx import Namespace, Resource

from ..services import health

PATH = "/health"
ns = Namespace("health", description="Is the engine serving, and how are its parts")


@ns.route("")
class Health(Resource):
    @ns.response(503, "Not serving runs (sandbox refused or shutting down)")
    def get(self):
        """Overall health, with the isolation in force (namespaces, cgroups, CPU limits, syscall filter) and the compile cache."""
        return health.overall()


@ns.route("/db")
class DatabaseHealth(Resource):
    def get(self):
        """Database reachability and latency."""
        return health.database()


@ns.route("/workers")
class WorkerHealth(Resource):
    def get(self):
        """Run pool: size, busy, queue depth."""
        return health.workers()
