"""The one module that uses Litestar's private API: the OpenAPI schema of msgspec Structs.

The API answers 400 for an unknown field in a body whose Struct has ``forbid_unknown_fields``,
so the OpenAPI document must say ``additionalProperties: false`` for it. Litestar 2 generates
Struct schemas in ``StructSchemaPlugin`` and passes a ``SchemaCreator``, both in the private
package ``litestar._openapi`` and exported nowhere public; the public
``litestar.plugins.OpenAPISchemaPlugin`` protocol has no way to reuse that generation. Importing
them here, and only here, means a Litestar release that moves them breaks this module alone,
with the message below (tests/test_litestar_private.py fails saying the same).
"""

from __future__ import annotations

from litestar.openapi.spec import Schema
from litestar.typing import FieldDefinition

try:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
except ImportError as exc:  # pragma: no cover - only on a Litestar that moved them
    raise ImportError(
        "Litestar moved SchemaCreator or StructSchemaPlugin out of litestar._openapi: "
        "update service/openapi_struct.py (the only module that imports them)"
    ) from exc


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Structs with ``forbid_unknown_fields`` are documented with ``additionalProperties: false``:
    the API answers 400 for an unknown field, so the document must not invite one."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if (
            getattr(field_definition.type_, "__struct_config__", None) is not None
            and field_definition.type_.__struct_config__.forbid_unknown_fields
        ):
            schema.additional_properties = False
        return schema
