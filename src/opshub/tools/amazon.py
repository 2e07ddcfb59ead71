"""Search Amazon's catalogue for products to source (Amazon Creators API)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from opshub.connectors.amazon import AmazonCreatorsClient
from opshub.credentials.models import Provider
from opshub.tools.connector import ConnectorTool
from opshub.tools.output import for_the_model


class AmazonSearchArgs(BaseModel):
    keywords: str = Field(min_length=2, max_length=200, description="What to look for.")
    search_index: str = Field(
        default="All", max_length=50, description="An Amazon category, e.g. Fashion, Electronics."
    )
    limit: int = Field(default=10, ge=1, le=10, description="How many items (at most 10).")


class AmazonProductSearchTool(ConnectorTool):
    name: str = "amazon_product_search"
    description: str = (
        "Searches Amazon for products to source: ASIN, title, price and the product page link."
    )
    args_schema: type[BaseModel] = AmazonSearchArgs

    def answer(self, **args: Any) -> str:
        a = AmazonSearchArgs(**args)
        c = self.connectors

        async def search(secret: dict[str, Any]) -> Any:
            client = AmazonCreatorsClient(http=c.http, settings=c.settings, secret=secret)
            return await client.search_items(
                keywords=a.keywords, search_index=a.search_index, item_count=a.limit
            )

        items = self.call(Provider.amazon_creators, search)
        if not items:
            return "Amazon found no products for those keywords."
        return for_the_model(items, hint="use fewer items")
