"""Response fields the API needs beyond flask-restx's own: UTC times, JSON kept as text, nullable ones."""
from __future__ import annotations

import json
from datetime import datetime

from flask_restx import fields


class UtcDateTime(fields.Raw):
    """ISO 8601 in UTC with a Z, from the naive UTC the database keeps."""

    __schema_type__ = "string"
    __schema_format__ = "date-time"

    def format(self, value: datetime) -> str:
        return value.isoformat(timespec="milliseconds") + "Z"


class JsonText(fields.Raw):
    """A JSON value a column keeps as text; `empty` when the column is null."""

    def __init__(self, empty: object, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.empty = empty
        self.__schema_type__ = "object" if isinstance(empty, dict) else "array"

    def output(self, key, obj, ordered=False, **kwargs):  # noqa: ANN001, ANN201
        value = fields.get_value(key if self.attribute is None else self.attribute, obj)
        return json.loads(value) if value else self.empty

    def schema(self) -> dict:
        schema = super().schema()
        if schema["type"] == "array":
            schema["items"] = {"type": "string"}
        return schema


class FileNames(fields.Raw):
    """The names of the files a run had beside its entry file, from the JSON the execution row keeps."""

    __schema_type__ = "array"

    def output(self, key, obj, ordered=False, **kwargs):  # noqa: ANN001, ANN201
        value = fields.get_value(key if self.attribute is None else self.attribute, obj)
        return sorted(json.loads(value)) if value else []

    def schema(self) -> dict:
        return {**super().schema(), "items": {"type": "string"}}


class Transcript(fields.Raw):
    """An interactive run's transcript, from the JSON the execution row keeps."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)

    def schema(self) -> dict:
        # Swagger 2.0 says "may be null" only through this extension
        return {**super().schema(), "x-nullable": True}


class JsonObject(fields.Raw):
    """An object from the JSON text a row keeps (null stays null)."""

    __schema_type__ = "object"

    def format(self, value: str) -> dict:
        return json.loads(value)


def nullable(field: fields.Raw) -> fields.Raw:
    """field, marked in the document as one that may be null (Swagger 2's x-nullable)."""
    schema = field.schema
    field.schema = lambda: {**schema(), "x-nullable": True}
    return field


class Limits(JsonObject):
    """The limits a run is held to, from the JSON the execution row keeps."""
