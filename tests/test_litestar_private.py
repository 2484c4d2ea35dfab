"""Litestar's private OpenAPI pieces, used by service/openapi_struct.py alone, are where that
module expects them, and still do what the API's document relies on. When a Litestar upgrade
moves them, this fails first and says where to look."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import service

PRIVATE = ("litestar._openapi.schema_generation", "litestar._openapi.schema_generation.plugins.struct")


@pytest.mark.parametrize("module", PRIVATE)
def test_the_private_modules_are_where_openapi_struct_expects_them(module):
    try:
        found = importlib.import_module(module)
    except ImportError:
        pytest.fail(f"Litestar moved {module}: update service/openapi_struct.py")
    assert hasattr(found, "SchemaCreator" if module == PRIVATE[0] else "StructSchemaPlugin"), (
        f"Litestar changed {module}: update service/openapi_struct.py"
    )


def test_no_other_module_imports_litestar_private_code():
    importers = []
    for info in pkgutil.walk_packages(service.__path__, "service."):
        spec = importlib.util.find_spec(info.name)
        text = open(spec.origin, encoding="utf-8").read() if spec and spec.origin else ""
        if "litestar._" in text and info.name != "service.openapi_struct":
            importers.append(info.name)
    assert importers == []


def test_strict_structs_are_documented_closed():
    from service.app import create_app

    document = create_app("postgresql://unused@127.0.0.1:1/unused").openapi_schema.to_schema()
    login = document["components"]["schemas"]["Credentials"]
    assert login["additionalProperties"] is False
