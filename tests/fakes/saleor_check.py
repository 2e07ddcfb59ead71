"""A small Saleor ``/graphql/`` endpoint for credential checks: validates every document against
the real 3.20 schema and answers from ``root``; the full shop fake is tests/fakes/saleor.py.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import graphql
from starlette.responses import JSONResponse, Response

from tests.fakes.saleor import SCHEMA_PATH as SALEOR_SCHEMA_PATH
from tests.fakes.wire import FakeServer, RecordedRequest, Reject

# -- Saleor GraphQL -----------------------------------------------------------------------------


def saleor_schema(path: Path | str = SALEOR_SCHEMA_PATH) -> graphql.GraphQLSchema:
    """The real Saleor 3.20 schema, built once per process and file (~0.6 s)."""
    return _build_schema(str(Path(path).resolve()))


@functools.cache
def _build_schema(path: str) -> graphql.GraphQLSchema:
    return graphql.build_schema(Path(path).read_text(encoding="utf-8"))


def saleor_error(error: graphql.GraphQLError | str, code: str | None = None) -> dict[str, Any]:
    """One entry of ``errors`` the way Saleor formats it."""
    if isinstance(error, str):
        return {"message": error, "extensions": {"exception": {"code": code or "GraphQLError"}}}
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path:
        formatted["path"] = list(error.path)
    original = error.original_error
    name = code or (type(original).__name__ if original else "GraphQLError")
    formatted["extensions"] = {"exception": {"code": name}}
    return formatted


class ExpiredSignatureError(Exception):
    """PyJWT's, which Saleor reports by class name."""


class FakeSaleor(FakeServer):
    """``POST /graphql/`` of a Saleor 3.20 API.

    Every document is parsed and validated against the real schema: a syntax or validation error
    is HTTP 400 ``{"errors": [...]}``. Then the token: ``Authorization: Bearer <t>`` with ``t``
    not in ``tokens`` (staff) or ``app_tokens`` runs as an anonymous storefront caller, as no
    token does (a real Saleor 3.20.119 answers an unknown token so). ``me`` answers the staff
    user of a staff token and ``app`` the app of an app token; ``app`` without either is a
    PermissionDenied error, as in Saleor, and for a token in ``expired_tokens`` an
    ``ExpiredSignatureError`` ("Signature has expired"), HTTP 200. A valid document is executed
    by graphql-core with ``root`` as the root value (``shop`` by default; add dicts or
    callables for more fields).
    """

    name = "fake-saleor"
    ROUTES = (("POST", r"/graphql/", "graphql"),)

    def __init__(
        self,
        *,
        tokens: Iterable[str] = (),
        app_tokens: Iterable[str] = (),
        shop_name: str = "Saleor e-commerce",
        schema_path: Path = SALEOR_SCHEMA_PATH,
    ) -> None:
        self.schema = saleor_schema(schema_path)
        self._config = (set(tokens), set(app_tokens), shop_name)
        super().__init__()

    def _restore(self) -> None:
        tokens, app_tokens, shop_name = copy.deepcopy(self._config)
        self.tokens: set[str] = tokens
        self.app_tokens: set[str] = app_tokens
        self.expired_tokens: set[str] = set()
        self.root: dict[str, Any] = {
            "shop": {
                "name": shop_name,
                "description": "Fake Saleor for opshub tests",
                "domain": {
                    "host": "localhost:8000",
                    "sslEnabled": False,
                    "url": "http://localhost:8000",
                },
            }
        }

    @property
    def url(self) -> str:
        return f"{self.base_url}/graphql/"

    def script_http_error(
        self, status: int, body: Any = None, *, latency: float = 0.0, times: int = 1
    ) -> None:
        """Queue a non-GraphQL answer (a proxy's 429/502); default body a Saleor-style error."""
        default = {"errors": [{"message": f"HTTP {status}"}]}
        self.script(
            "graphql", status, default if body is None else body, latency=latency, times=times
        )

    def script_graphql_errors(
        self, message: str, code: str = "PermissionDenied", *, times: int = 1
    ) -> None:
        """Queue an HTTP 200 ``{"data": null, "errors": [...]}``."""
        body = {"data": None, "errors": [saleor_error(message, code)]}
        self.script("graphql", 200, body, times=times)

    @staticmethod
    def _bad_request(*errors: dict[str, Any]) -> Reject:
        return Reject(400, {"errors": list(errors)})

    def _identity(self, token: str | None) -> dict[str, Any]:
        staff, app = token in self.tokens, token in self.app_tokens
        expired = token in self.expired_tokens

        def current_app(_info: Any, **_args: Any) -> dict[str, Any] | None:
            if expired:
                raise ExpiredSignatureError("Signature has expired")
            if not (staff or app):
                raise graphql.GraphQLError(
                    "You need one of the following permissions: "
                    "AUTHENTICATED_STAFF_USER, AUTHENTICATED_APP"
                )
            return {"id": "QXBwOjE=", "name": "opshub"} if app else None

        me = {"id": "VXNlcjox", "email": "staff@example.com"} if staff else None
        return {"me": me, "app": current_app}

    async def _graphql(self, req: RecordedRequest) -> Response:
        body = req.body
        if not isinstance(body, dict):
            raise self._bad_request(saleor_error("Unable to parse query."))
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise self._bad_request(saleor_error("Must provide a query string."))
        try:
            document = graphql.parse(query)
        except graphql.GraphQLError as err:
            raise self._bad_request(saleor_error(err)) from None
        if problems := graphql.validate(self.schema, document):
            raise self._bad_request(*(saleor_error(p) for p in problems))
        auth = req.headers.get("authorization", "")
        token = req.headers.get("authorization-bearer") or (
            auth[7:].strip() if auth.lower().startswith("bearer ") else None
        )
        if scripted := await self._scripted("graphql"):
            return scripted
        variables = body.get("variables")
        result = graphql.execute(
            self.schema,
            document,
            root_value={**self._identity(token), **self.root},
            variable_values=variables if isinstance(variables, dict) else None,
            operation_name=body.get("operationName"),
        )
        if inspect.isawaitable(result):
            result = await result
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [saleor_error(e) for e in result.errors]
        return JSONResponse(payload)
