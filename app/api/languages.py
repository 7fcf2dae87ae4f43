"""The languages this engine runs, with versions and limits."""
from __future__ import annotations

from flask_restx import Namespace, Resource

from .. import catalog
from ..sandbox import installed
from ..services.executions import engine
from .schemas import LANGUAGE_LIST

PATH = "/languages"
ns = Namespace("languages", description="What can run here, and under which limits")


@ns.route("")
class LanguageList(Resource):
    @ns.response(200, "Languages with versions, limits, capabilities and templates, and the isolation in force", LANGUAGE_LIST)
    def get(self):
        """The installed languages: version, display name, entry file, default and maximum limits,
        capabilities and a starting template each."""
        return {
            "languages": [catalog.describe(language) for language in installed()],
            "isolation": engine().sandbox.describe(),
        }
