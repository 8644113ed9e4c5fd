"""OpenAPI request bodies for endpoints that take an image as multipart or JSON.

Litestar documents one media type per `data` parameter; these handlers parse the body themselves to
accept both, so their operations carry a hand-built requestBody derived from the msgspec schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from litestar.openapi.spec import Operation


def _inline_schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    schema = msgspec.json.schema(struct)
    defs = schema.get("$defs", {})
    return dict(defs[struct.__name__]) if "$ref" in schema else dict(schema)


def _multipart(json_schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, prop in json_schema["properties"].items():
        if name == "image":
            props[name] = {"type": "string", "format": "binary", "description": prop.get("description", "")}
        else:
            props[name] = prop
    return {"type": "object", "properties": props, "required": json_schema.get("required", [])}


def operation_with_image_body(struct: type[msgspec.Struct]) -> type[Operation]:
    body_schema = _inline_schema(struct)

    @dataclass
    class ImageBodyOperation(Operation):
        image_body: ClassVar[dict[str, Any]] = {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": _multipart(body_schema)},
                "application/json": {"schema": body_schema},
            },
        }

        def to_schema(self) -> dict[str, Any]:
            out = super().to_schema()
            out["requestBody"] = self.image_body
            return out

    ImageBodyOperation.__name__ = f"{struct.__name__}Operation"
    return ImageBodyOperation
