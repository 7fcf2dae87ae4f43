"""The languages this engine runs, with versions and limits."""
from __future__ import annotations

from flask_restx import Namespace, Resource

from .. import catalog
from ..sandbox import installed
from ..services.executions import engine

PATH = "/languages"
ns = Namespace("languages", description="What can run here, and under which limits")


@ns.route("")
class LanguageList(Resource):
    @ns.response(200, "Languages with versions and limits, and the isolation in force")
    def get(self):
        """The installed languages, each with its version and the limits a run gets."""
        return {
            "languages": [catalog.describe(language) for language in installed()],
            "isolation": engine().sandbox.describe(),
        }
