"""Saleor's wire conventions: named operations loaded from a ``.graphql`` file with the fragments
each one spreads, and what an answer means when it is not a success."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import graphql
import httpx

from opshub.connectors.http import Failure, FailureKind, retry_after_header

Obj = dict[str, Any]
# PyJWT's exceptions, which Saleor reports by class name for a bad or expired token.
TOKEN_ERRORS = frozenset({"ExpiredSignatureError", "InvalidSignatureError", "DecodeError",
                          "InvalidTokenError", "PyJWTError", "JSONWebTokenError"})  # fmt: skip
# What an anonymous caller lacks: a token Saleor does not know is treated as none at all.
ANY_SIGNED_IN = frozenset({"AUTHENTICATED_STAFF_USER", "AUTHENTICATED_APP", "AUTHENTICATED_USER"})
_TOKEN_MESSAGE = re.compile(r"signature has expired|invalid token|token is invalid", re.I)


class _Spreads(graphql.Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: graphql.FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def load_operations(path: Path) -> dict[str, str]:
    """Each named operation of a ``.graphql`` file, printed with the fragments it uses."""
    document = graphql.parse(path.read_text())
    fragments = {
        d.name.value: d
        for d in document.definitions
        if isinstance(d, graphql.FragmentDefinitionNode)
    }
    operations: dict[str, str] = {}
    for definition in document.definitions:
        if not isinstance(definition, graphql.OperationDefinitionNode) or not definition.name:
            continue
        used: dict[str, graphql.FragmentDefinitionNode] = {}
        pending: list[graphql.Node] = [definition]
        while pending:
            spreads = _Spreads()
            graphql.visit(pending.pop(), spreads)
            for name in sorted(spreads.names - used.keys()):
                used[name] = fragments[name]
                pending.append(fragments[name])
        nodes = [definition, *sorted(used.values(), key=lambda f: f.name.value)]
        operations[definition.name.value] = "\n\n".join(graphql.print_ast(n) for n in nodes)
    return operations


def classify(response: httpx.Response) -> Failure | None:
    """Saleor's answer as a failure, or None when it holds ``data`` and no ``errors``."""
    status = response.status_code
    if status in (401, 403):
        return Failure(FailureKind.auth, f"Saleor refused the token (HTTP {status})")
    if status == 429:
        hint = retry_after_header(response)
        return Failure(FailureKind.rate_limited, "Saleor is rate limiting this token", hint)
    if status >= 500:
        hint = retry_after_header(response)
        return Failure(FailureKind.transient, f"Saleor answered HTTP {status}", hint)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Failure(
            FailureKind.response,
            f"Saleor answered something that is not GraphQL JSON (HTTP {status}); check that "
            "the shop URL is its GraphQL endpoint, e.g. https://shop.example.com/graphql/",
        )
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    if errors and body.get("data") is None and _internal_server_error(errors):
        # Saleor's answer to two creates of one unique value racing (a look-before-write
        # retry settles it), and to other passing faults.
        return Failure(FailureKind.transient, "Saleor answered Internal Server Error")
    if errors and isinstance(body.get("data"), dict) and _only_withheld(errors):
        return None
    if errors:
        return _graphql_failure(errors)
    if status != 200:
        return Failure(FailureKind.request, f"Saleor answered HTTP {status}")
    if not isinstance(body.get("data"), dict):
        return Failure(FailureKind.response, "Saleor's answer holds no data")
    return None


def _code(error: Obj) -> str:
    return str(((error.get("extensions") or {}).get("exception") or {}).get("code") or "")


def _needed(error: Obj) -> list[str]:
    """The permissions a PermissionDenied message names."""
    return re.findall(r"\b[A-Z][A-Z_]{3,}\b", str(error.get("message") or "").partition(":")[2])


def _internal_server_error(errors: list[Obj]) -> bool:
    return all(str(e.get("message")).strip() == "Internal Server Error" for e in errors)


def _only_withheld(errors: list[Obj]) -> bool:
    """Every error is a permission on a field below the root: the rest of the answer stands."""
    return all(
        _code(e) == "PermissionDenied"
        and len(e.get("path") or []) > 1
        and not set(_needed(e)) <= ANY_SIGNED_IN
        for e in errors
    )


def withheld_fields(errors: list[Obj]) -> list[str]:
    """What a partial answer lacks, for the agent: "customers.orders needs MANAGE_ORDERS"."""
    notes: list[str] = []
    for error in errors:
        if _code(error) != "PermissionDenied":
            continue
        path = [str(p) for p in error.get("path") or [] if isinstance(p, str)]
        where = ".".join(p for p in path if p not in ("edges", "node"))
        note = f"{where} needs {' or '.join(_needed(error)) or 'a permission'}"
        if note not in notes:
            notes.append(note)
    return notes


def _graphql_failure(errors: list[Obj]) -> Failure:
    code = _code
    for error in errors:
        message = str(error.get("message") or "")
        if code(error) in TOKEN_ERRORS or _TOKEN_MESSAGE.search(message):
            return Failure(FailureKind.auth, f"Saleor refused the token: {message}")
    for error in errors:
        if code(error) == "PermissionDenied":
            message = str(error.get("message") or "")
            needed = _needed(error)
            if needed and set(needed) <= ANY_SIGNED_IN:  # Saleor took us for anonymous
                return Failure(FailureKind.auth, "Saleor does not recognise the token")
            where = ".".join(str(p) for p in error.get("path") or []) or "this request"
            return Failure(
                FailureKind.request,
                f"the Saleor token lacks a permission: {where} needs "
                f"{' or '.join(needed) or message}; the shop owner can grant it to the staff "
                "user or app the token belongs to",
            )
    messages = "; ".join(str(e.get("message")) for e in errors[:3])
    return Failure(FailureKind.request, f"Saleor rejected the request: {messages}")
