"""Read the tenant's Saleor shop: products, catalogue, orders, customers, vouchers and stock."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from opshub.connectors.saleor import SaleorClient
from opshub.credentials.models import Provider
from opshub.tools.connector import ConnectorTool
from opshub.tools.output import for_the_model

CHANNEL = Field(
    default="default-channel",
    max_length=100,
    description="The sales channel's slug: prices and availability differ per channel. "
    "shop_catalog(what='channels') lists them.",
)
LIMIT = Field(default=10, ge=1, le=50, description="How many to return.")
CURSOR = Field(
    default=None, max_length=500, description="The `next` value of the previous page, if any."
)


def with_withheld(result: Any, withheld: list[str]) -> Any:
    """The answer, and what the token may not read in it (fields Saleor left null)."""
    if not withheld:
        return result
    note = (
        f"{'; '.join(withheld)}: the Saleor token lacks that permission, so these fields are "
        "null; the shop owner can grant it to the App the token belongs to"
    )
    if isinstance(result, dict):
        return {**result, "withheld": note}
    return {"items": result, "withheld": note}


class SaleorTool(ConnectorTool):
    def shop(self, operation: Any) -> str:
        async def with_client(secret: dict[str, Any]) -> Any:
            client = SaleorClient(http=self.connectors.http, secret=secret)
            return with_withheld(await operation(client), client.withheld)

        return for_the_model(
            self.call(Provider.saleor, with_client), hint="narrow the search or lower limit"
        )


class ShopProductsArgs(BaseModel):
    search: str | None = Field(default=None, max_length=200, description="Words to search for.")
    id: str | None = Field(default=None, max_length=100, description="One product's id.")
    slug: str | None = Field(default=None, max_length=255, description="One product's slug.")
    category: str | None = Field(default=None, max_length=100, description="A category id.")
    channel: str = CHANNEL
    limit: int = LIMIT
    cursor: str | None = CURSOR


class ShopProductsTool(SaleorTool):
    name: str = "shop_products"
    description: str = (
        "Finds products in the shop with their variants (SKU), prices in a channel and stock per "
        "warehouse. Give `id` (or else `slug`) for one product, or `search`/`category` for a "
        "list."
    )
    args_schema: type[BaseModel] = ShopProductsArgs

    def answer(self, **args: Any) -> str:
        a = ShopProductsArgs(**args)
        if a.id or a.slug:  # Saleor refuses both at once: the client sends the id if given
            return self.shop(lambda c: c.get_product(id=a.id, slug=a.slug, channel=a.channel))
        return self.shop(
            lambda c: c.search_products(
                search=a.search,
                channel=a.channel,
                category=a.category,
                first=a.limit,
                after=a.cursor,
            )
        )


class ShopCatalogArgs(BaseModel):
    what: Literal["categories", "channels", "warehouses", "product_types"] = Field(
        description="Which part of the catalogue's structure to list."
    )
    search: str | None = Field(default=None, max_length=200)


class ShopCatalogTool(SaleorTool):
    name: str = "shop_catalog"
    description: str = (
        "Lists the shop's categories, channels (with currency), warehouses or product types, "
        "with their ids: look these up before proposing a product or a stock change. A product "
        "type lists the variant attributes a new product's variant takes (required ones must "
        "be given to propose_product, a DROPDOWN's value one of its choices)."
    )
    args_schema: type[BaseModel] = ShopCatalogArgs

    def answer(self, **args: Any) -> str:
        a = ShopCatalogArgs(**args)
        if a.what == "channels":
            return self.shop(lambda c: c.list_channels())
        if a.what == "warehouses":
            return self.shop(lambda c: c.list_warehouses(search=a.search))
        if a.what == "product_types":
            return self.shop(lambda c: c.list_product_types(search=a.search))
        return self.shop(lambda c: c.list_categories(search=a.search))


class ShopOrdersArgs(BaseModel):
    id: str | None = Field(default=None, max_length=100, description="One order's id: details.")
    status: (
        Literal["UNFULFILLED", "PARTIALLY_FULFILLED", "FULFILLED", "CANCELED", "UNCONFIRMED"] | None
    ) = Field(default=None, description="Only orders in this status.")
    search: str | None = Field(
        default=None, max_length=200, description="A whole term: a customer e-mail or order number."
    )
    channel: str | None = Field(default=None, max_length=100, description="A channel slug.")
    limit: int = LIMIT
    cursor: str | None = CURSOR


class ShopOrdersTool(SaleorTool):
    name: str = "shop_orders"
    description: str = (
        "Reads the shop's orders, newest first: number, date, status, payment, customer e-mail and "
        "total. Give `id` for one order's lines, addresses and fulfilments."
    )
    args_schema: type[BaseModel] = ShopOrdersArgs

    def answer(self, **args: Any) -> str:
        a = ShopOrdersArgs(**args)
        if a.id:
            return self.shop(lambda c: c.get_order(id=a.id))
        return self.shop(
            lambda c: c.list_orders(
                status=a.status, search=a.search, channel=a.channel, first=a.limit, after=a.cursor
            )
        )


class ShopCustomersArgs(BaseModel):
    search: str | None = Field(default=None, max_length=200, description="Name or e-mail.")
    limit: int = LIMIT
    cursor: str | None = CURSOR


class ShopCustomersTool(SaleorTool):
    name: str = "shop_customers"
    description: str = "Finds the shop's customers: e-mail, name, number of orders, address."
    args_schema: type[BaseModel] = ShopCustomersArgs

    def answer(self, **args: Any) -> str:
        a = ShopCustomersArgs(**args)
        return self.shop(lambda c: c.list_customers(search=a.search, first=a.limit, after=a.cursor))


class ShopVouchersArgs(BaseModel):
    search: str | None = Field(default=None, max_length=200, description="A code or name.")
    channel: str | None = Field(default=None, max_length=100, description="A channel slug.")
    limit: int = LIMIT


class ShopVouchersTool(SaleorTool):
    name: str = "shop_vouchers"
    description: str = "Lists the shop's vouchers: codes, discount type and value per channel."
    args_schema: type[BaseModel] = ShopVouchersArgs

    def answer(self, **args: Any) -> str:
        a = ShopVouchersArgs(**args)
        return self.shop(
            lambda c: c.list_vouchers(search=a.search, channel=a.channel, first=a.limit)
        )


class ShopStockArgs(BaseModel):
    threshold: int = Field(
        default=5, ge=0, le=10_000, description="Variants with at most this many available."
    )
    channel: str = CHANNEL
    limit: int = Field(default=50, ge=1, le=100)


class ShopStockTool(SaleorTool):
    name: str = "shop_stock"
    description: str = (
        "Lists the variants low in stock (at or below `threshold` available), with their "
        "warehouses: for restocking and the daily digest."
    )
    args_schema: type[BaseModel] = ShopStockArgs

    def answer(self, **args: Any) -> str:
        a = ShopStockArgs(**args)
        return self.shop(
            lambda c: c.low_stock(threshold=a.threshold, channel=a.channel, first=a.limit)
        )
