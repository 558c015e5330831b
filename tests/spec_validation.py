"""Validate JSON against the component schemas of a vendored OpenAPI 3.0 spec.

    platform = OpenApiSpec.load("jira-platform-v3.json")
    platform.validate_response("IssueBean", body)          # readOnly allowed, writeOnly not
    platform.validate_request("IssueUpdateDetails", body)  # readOnly properties refused

`$ref`s ("#/components/schemas/…") resolve inside the spec file through a `referencing`
registry, so nested schemas are checked exactly as the spec states them (OAS 3.0 semantics via
`openapi_schema_validator`: `nullable`, `readOnly`/`writeOnly` by direction). Works for any
OpenAPI 3.0 file in `specs/` (the Jira platform and agile specs); Swagger 2.0 files need
their own validator.

`format` is not asserted: Atlassian's own examples write date-times as
`2020-03-26T22:20:59.000+0000`, which RFC 3339 (`format: date-time`) rejects, and the sandbox
serves what Jira serves.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPECS = Path(__file__).resolve().parent.parent / "specs"


class SpecMismatch(AssertionError):
    """A value does not match the spec; the message lists every violation with its path."""


class OpenApiSpec:
    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.document = document
        self.uri = f"urn:spec:{name}"
        resource = Resource.from_contents(document, default_specification=DRAFT4)
        self.registry: Registry = Registry().with_resource(self.uri, resource)  # type: ignore[call-arg]

    @classmethod
    @cache
    def load(cls, file_name: str) -> OpenApiSpec:
        path = SPECS / file_name
        return cls(file_name, json.loads(path.read_text(encoding="utf-8-sig")))

    # -- schemas ---------------------------------------------------------------------------
    def component(self, name: str) -> dict[str, Any]:
        schemas = self.document["components"]["schemas"]
        if name not in schemas:
            raise KeyError(f"{self.name} has no component schema {name!r}")
        return dict(schemas[name])

    def ref(self, name: str) -> dict[str, Any]:
        self.component(name)  # fail early on a typo
        return {"$ref": f"{self.uri}#/components/schemas/{name}"}

    def operation(self, path: str, method: str) -> dict[str, Any]:
        try:
            return dict(self.document["paths"][path][method.lower()])
        except KeyError:
            raise KeyError(f"{self.name} has no operation {method.upper()} {path}") from None

    def response_schema(self, path: str, method: str, status: int) -> dict[str, Any]:
        """The JSON schema an operation declares for a response status."""
        responses = self.operation(path, method)["responses"]
        content = responses[str(status)].get("content", {}).get("application/json", {})
        if "schema" not in content:
            raise KeyError(f"{method.upper()} {path} declares no JSON schema for {status}")
        return self.rebased(content["schema"])

    def request_schema(self, path: str, method: str) -> dict[str, Any]:
        body = self.operation(path, method)["requestBody"]
        return self.rebased(body["content"]["application/json"]["schema"])

    def rebased(self, schema: Any) -> Any:
        """Inline schemas refer to "#/components/…" of this document: make the refs absolute."""
        if isinstance(schema, dict):
            return {
                key: (f"{self.uri}{value}" if key == "$ref" and value.startswith("#") else
                      self.rebased(value))
                for key, value in schema.items()
            }  # fmt: skip
        if isinstance(schema, list):
            return [self.rebased(item) for item in schema]
        return schema

    # -- validation ------------------------------------------------------------------------
    def errors(self, schema: dict[str, Any] | str, instance: Any, *, request: bool) -> list[str]:
        """Every violation as "path: message" (empty when the instance is valid)."""
        resolved = self.ref(schema) if isinstance(schema, str) else schema
        validator_class = OAS30WriteValidator if request else OAS30ReadValidator
        validator = validator_class(resolved, registry=self.registry)
        found: list[ValidationError] = sorted(validator.iter_errors(instance), key=str)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]

    def validate_response(self, schema: dict[str, Any] | str, instance: Any) -> None:
        self._raise(schema, self.errors(schema, instance, request=False))

    def validate_request(self, schema: dict[str, Any] | str, instance: Any) -> None:
        self._raise(schema, self.errors(schema, instance, request=True))

    def _raise(self, schema: dict[str, Any] | str, problems: list[str]) -> None:
        if problems:
            shown = schema if isinstance(schema, str) else json.dumps(schema)[:80]
            listing = "\n  ".join(problems[:20])
            raise SpecMismatch(f"{self.name} {shown}: {len(problems)} violation(s)\n  {listing}")


def jira_platform() -> OpenApiSpec:
    return OpenApiSpec.load("jira-platform-v3.json")


def jira_agile() -> OpenApiSpec:
    return OpenApiSpec.load("jira-software-agile.json")
