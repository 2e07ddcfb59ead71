"""/v1/data/{clients,leads,campaigns,reports}: one router per resource, built from its Resource."""

import uuid
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import APIRouter, Body, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, create_model

from opshub.api.deps import MemberDep, StateDep, ViewerDep
from opshub.data import service as data_service
from opshub.data.resources import RESOURCES, Resource
from opshub.data.schemas import ImportResult
from opshub.errors import InvalidInputError
from opshub.schemas import StrictInput

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def _list_query_model(resource: Resource) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "q": (str | None, Field(None, max_length=200, description="Text to search for")),
        "cursor": (str | None, Field(None, max_length=500)),
        "limit": (int, Field(50, ge=1, le=data_service.MAX_PAGE)),
    }
    for name in resource.filters:
        annotation = resource.read.model_fields[name].annotation
        fields[name] = (annotation, None)
    return create_model(f"{resource.singular.title()}ListQuery", __base__=StrictInput, **fields)


class JSONText(Response):
    """A body the database already rendered as JSON; ``response_model`` still documents it."""

    media_type = "application/json"


def _validate_query(model: type[BaseModel], request: Request) -> dict[str, Any]:
    # Validated here rather than as a FastAPI query model: FastAPI inspects every field's
    # annotation on every request that way, which was a tenth of the list endpoint's CPU.
    try:
        return model.model_validate(dict(request.query_params)).model_dump()
    except ValidationError as exc:
        errors = [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


def _openapi_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    properties = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "schema": schema} for name, schema in properties.items()]


async def _import_rows(request: Request, resource: Resource) -> list[Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type == "text/csv":
        return data_service.parse_csv(body, resource=resource)
    if content_type in ("application/json", ""):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError("the body is not valid JSON") from exc
        items = parsed.get("items") if isinstance(parsed, dict) else parsed
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInputError('send {"items": [ {...}, ... ]} or a JSON array of objects')
        return items
    raise InvalidInputError(f"import takes application/json or text/csv, not {content_type}")


def build_router(resource: Resource) -> APIRouter:
    router = APIRouter(prefix=f"/v1/data/{resource.name}", tags=["data"])
    Read, Create, Update = resource.read, resource.create, resource.update
    ListQuery = _list_query_model(resource)

    @router.get(
        "",
        response_model=Page[Read],  # type: ignore[valid-type]
        summary=f"List {resource.name}, newest first",
        openapi_extra={"parameters": _openapi_parameters(ListQuery)},
    )
    async def list_items(ctx: ViewerDep, request: Request) -> Response:
        params = _validate_query(ListQuery, request)
        filters = {name: params[name] for name in resource.filters}
        items, next_cursor = await data_service.list_records(
            ctx.conn,
            resource=resource,
            tenant_id=ctx.principal.tenant_id,
            filters=filters,
            q=params["q"],
            cursor=params["cursor"],
            limit=params["limit"],
        )
        cursor = orjson.dumps(next_cursor).decode()
        return JSONText(f'{{"items":[{",".join(items)}],"next_cursor":{cursor}}}')

    @router.get("/{item_id}", response_model=Read, summary=f"Get one {resource.singular}")
    async def get_item(ctx: ViewerDep, item_id: uuid.UUID) -> Response:
        document = await data_service.get_record(
            ctx.conn, resource=resource, tenant_id=ctx.principal.tenant_id, row_id=item_id
        )
        return JSONText(document)

    @router.post("", response_model=Read, status_code=201, summary=f"Create a {resource.singular}")
    async def create_item(ctx: MemberDep, data: Annotated[Create, Body()]) -> Response:  # type: ignore[valid-type]
        document = await data_service.create_record(
            ctx.conn, resource=resource, tenant_id=ctx.principal.tenant_id, data=data
        )
        return JSONText(document, status_code=201)

    @router.patch("/{item_id}", response_model=Read, summary=f"Update a {resource.singular}")
    async def update_item(
        ctx: MemberDep,
        item_id: uuid.UUID,
        data: Annotated[Update, Body()],  # type: ignore[valid-type]
    ) -> Response:
        document = await data_service.update_record(
            ctx.conn,
            resource=resource,
            tenant_id=ctx.principal.tenant_id,
            row_id=item_id,
            data=data,
        )
        return JSONText(document)

    @router.delete("/{item_id}", status_code=204, summary=f"Delete a {resource.singular}")
    async def delete_item(ctx: MemberDep, item_id: uuid.UUID) -> Response:
        await data_service.delete_record(
            ctx.conn, resource=resource, tenant_id=ctx.principal.tenant_id, row_id=item_id
        )
        return Response(status_code=204)

    @router.post(
        "/import",
        response_model=ImportResult,
        status_code=201,
        summary=f"Import {resource.name} from JSON or CSV, all rows or none",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {"$ref": f"#/components/schemas/{Create.__name__}"},
                                }
                            },
                        }
                    },
                    "text/csv": {"schema": {"type": "string"}},
                }
            }
        },
    )
    async def import_items(ctx: MemberDep, state: StateDep, request: Request) -> ImportResult:
        rows = await _import_rows(request, resource)
        ids = await data_service.import_rows(
            ctx.conn,
            resource=resource,
            tenant_id=ctx.principal.tenant_id,
            rows=rows,
            max_rows=state.settings.import_max_rows,
        )
        return ImportResult(imported=len(ids), ids=ids)

    return router


routers = [build_router(resource) for resource in RESOURCES.values()]
