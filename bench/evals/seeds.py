"""The business a scenario starts from, served by the repo's wire-exact fakes.

Every eval tenant connects the same five services the way a tenant does (``PUT
/v1/credentials/{provider}``, checked healthy): its own Saleor shop (one fake per scenario), and
its own accounts on the Google Ads, Meta, LinkedIn and Amazon fakes shared by the run. Then the
scenario's seed fills them:

- ``roas_drop``: the last two full weeks (Monday to Sunday) and this week so far of daily ad
  results on three channels. Meta's "Spring Sale" had its budget raised from 45 to 80 USD a day
  at the start of last week and sold less; the other campaigns and the shop's revenue from
  orders (two orders a day, 358 USD) did not change. ROAS: 2.52 the week before, 2.02 last week.
- ``budget_shift``: the same accounts, steady: Spring Sale (Meta, 45 USD/day) costs 15 USD a
  purchase, Search - Core Terms (Google, 60 USD/day) 30 USD a conversion.
- ``shop``: the Saleor fake's catalogue (orders #1-#3, customers such as alice@example.com),
  two more orders (#4 waiting for Carol Chen, #5 fulfilled) and three leads, one due today.

Amazon's catalogue is shared, as Amazon's is: a white canvas sneaker among other sneakers.
Dates are relative to today (UTC), the day crews are told it is.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from httpx import AsyncClient
from tests.fakes.amazon import FakeAmazonCreators
from tests.fakes.google_ads import FakeGoogleAds
from tests.fakes.linkedin import FakeLinkedIn
from tests.fakes.meta import FakeMetaGraph
from tests.fakes.saleor import FakeSaleorServer

CURRENCY = "USD"
AMAZON_ITEMS = (  # (ASIN, title, price)
    ("B0EVALWC01", "Men's White Canvas Low-Top Sneakers, Classic Lace-Up Shoes", "24.99"),
    ("B0EVALBC02", "Women's Black Canvas High-Top Sneakers", "27.50"),
    ("B0EVALWL03", "White Leather Court Sneakers", "39.00"),
)
# Two orders a day on the default channel (USD): 160 + 198 = 358.
BASKETS = (
    [("HOOD-M", 2), ("MONO-S", 2), ("BELT-1", 1)],
    [("HOOD-L", 2), ("DASH-M", 4), ("CAP-1", 2)],
)


class SeedError(RuntimeError):
    """A service could not be connected or filled; the message says which."""


@dataclass(frozen=True)
class Services:
    """The ad platforms and Amazon, shared by every tenant of a run (accounts keep them apart)."""

    google: FakeGoogleAds
    meta: FakeMetaGraph
    linkedin: FakeLinkedIn
    amazon: FakeAmazonCreators

    def settings(self) -> dict[str, str]:
        return {
            "google_oauth_url": self.google.token_url,
            "google_ads_api_url": self.google.api_url,
            "meta_graph_url": self.meta.graph_url,
            "linkedin_api_url": self.linkedin.api_url,
            "amazon_lwa_url": self.amazon.lwa_url,
            "amazon_creators_api_url": self.amazon.api_url,
        }


@contextmanager
def running_services() -> Iterator[Services]:
    with (
        FakeGoogleAds() as google,
        FakeMetaGraph() as meta,
        FakeLinkedIn() as linkedin,
        FakeAmazonCreators() as amazon,
    ):
        for asin, title, price in AMAZON_ITEMS:
            amazon.add_item(asin, title, price=price, search_index="Fashion")
        yield Services(google, meta, linkedin, amazon)


@dataclass(frozen=True)
class Accounts:
    """One tenant's accounts on the fakes."""

    client: AsyncClient  # the hub, with the tenant's API key
    services: Services
    shop: FakeSaleorServer
    google: str  # customer id
    meta: str  # ad account id, digits
    linkedin: int  # ad account id
    today: date


def _digits(n: int) -> str:
    return str(uuid.uuid4().int)[:n]


async def _store(client: AsyncClient, provider: str, secret: dict[str, Any]) -> None:
    response = await client.put(f"/v1/credentials/{provider}", json={"secret": secret})
    status = response.json().get("status") if response.is_success else None
    if status != "healthy":
        raise SeedError(f"connecting {provider}: HTTP {response.status_code}, status {status}")


async def _connect(
    client: AsyncClient, services: Services, shop: FakeSaleorServer, shop_token: str
) -> Accounts:
    google, meta, linkedin, amazon = (
        services.google,
        services.meta,
        services.linkedin,
        services.amazon,
    )
    await _store(client, "saleor", {"url": shop.url, "token": shop_token})

    g = {
        "client_id": f"{uuid.uuid4().hex}.apps.googleusercontent.com",
        "client_secret": f"GOCSPX-{uuid.uuid4().hex}",
        "refresh_token": f"1//0g{uuid.uuid4().hex}",
        "developer_token": f"devtok-{uuid.uuid4().hex}",
        "login_customer_id": _digits(10),
        "customer_id": _digits(10),
    }
    google.add_client(g["client_id"], g["client_secret"])
    google.refresh_tokens.add(g["refresh_token"])
    google.add_customer(g["customer_id"], currency=CURRENCY, refresh_tokens=[g["refresh_token"]])
    await _store(client, "google_ads", g)

    meta_account, meta_token = _digits(12), f"EAAB{uuid.uuid4().hex}"
    meta.add_token(meta_token)
    meta.add_ad_account(meta_account, currency=CURRENCY, name="Acme Outdoor", tokens=[meta_token])
    await _store(
        client, "meta_ads", {"access_token": meta_token, "ad_account_id": f"act_{meta_account}"}
    )

    li_account, li_token = int(_digits(9)), f"AQV{uuid.uuid4().hex}"
    linkedin.add_account(li_account, currency=CURRENCY, name="Acme Outdoor")
    linkedin.add_token(li_token, [li_account])
    await _store(
        client, "linkedin_ads", {"access_token": li_token, "ad_account_id": str(li_account)}
    )

    a = {
        "client_id": f"amzn1.application-oa2-client.{uuid.uuid4().hex}",
        "client_secret": f"amzn1.oa2-cs.v1.{uuid.uuid4().hex}",
        "partner_tag": f"acme{uuid.uuid4().hex[:6]}-20",
        "credential_version": "3.0",
        "marketplace": "www.amazon.com",
    }
    amazon.add_client(a["client_id"], a["client_secret"], "3.0", partner_tag=a["partner_tag"])
    await _store(client, "amazon_creators", a)

    today = datetime.now(UTC).date()
    return Accounts(client, services, shop, g["customer_id"], meta_account, li_account, today)


def _days(today: date) -> tuple[list[date], list[date], list[date]]:
    """The week before last, last week (Monday to Sunday) and this week up to yesterday."""
    monday = today - timedelta(days=today.weekday())
    before = [monday - timedelta(days=14 - i) for i in range(7)]
    last = [monday - timedelta(days=7 - i) for i in range(7)]
    this = [monday + timedelta(days=i) for i in range(today.weekday())]
    return before, last, this


def _ads(acc: Accounts, *, spring_sale_drop: bool) -> None:
    s = acc.services
    before, last, this = _days(acc.today)
    google_budget = 60_000_000  # micros
    spring_budget = 8000 if spring_sale_drop else 4500  # cents
    s.google.add_campaign(
        acc.google, "9001", "Search - Core Terms", daily_budget_micros=google_budget
    )
    s.meta.add_campaign(acc.meta, "7001", "Spring Sale", daily_budget=spring_budget)
    s.meta.add_campaign(acc.meta, "7002", "Retargeting - Cart Abandoners", daily_budget=1200)
    li_campaign = acc.linkedin + 1  # campaign ids are global in LinkedIn's fake
    s.linkedin.add_campaign(acc.linkedin, li_campaign, "Decision makers", daily_budget="25")
    for day in before + last + this:
        dropped = spring_sale_drop and day >= last[0]
        iso = day.isoformat()
        s.google.add_daily_stats(
            acc.google, "9001", iso, impressions=2400, clicks=96, cost_micros=60_000_000,
            conversions=2.0,
        )  # fmt: skip
        s.meta.add_daily_stats(
            acc.meta, "7001", iso, impressions=5200 if dropped else 3000,
            clicks=104 if dropped else 90, spend="80.00" if dropped else "45.00",
            actions={"purchase": 1 if dropped else 3},
        )  # fmt: skip
        s.meta.add_daily_stats(
            acc.meta, "7002", iso, impressions=900, clicks=27, spend="12.00",
            actions={"purchase": 1},
        )  # fmt: skip
        s.linkedin.add_daily_stats(li_campaign, iso, impressions=1100, clicks=8, cost="25.00")


def _add_order(
    shop: FakeSaleorServer, customer: int, when: datetime, lines: list[tuple[str, int]], status: str
) -> str:
    orders = shop.store.orders
    pk = max(o["pk"] for o in orders) + 1
    created = when.isoformat()
    orders.append(
        {"pk": pk, "number": str(pk), "customer": customer, "channel": "default-channel",
         "status": status, "payment": "FULLY_CHARGED", "created": created,
         "lines": [(sku, qty, qty if status == "FULFILLED" else 0) for sku, qty in lines],
         "events": [{"pk": pk * 100, "type": "PLACED", "date": created}]}
    )  # fmt: skip
    return str(pk)


def _daily_orders(acc: Accounts) -> None:
    before, last, this = _days(acc.today)
    yesterday = acc.today - timedelta(days=1)
    for n, (day, (basket, hour)) in enumerate(
        (day, pick) for day in before + last + this for pick in zip(BASKETS, (10, 16), strict=True)
    ):
        when = datetime.combine(day, time(hour, 15), UTC)
        status = "UNFULFILLED" if day == yesterday else "FULFILLED"
        _add_order(acc.shop, 1 + n % 3, when, basket, status)  # customers 1-3 in turn


async def roas_drop(acc: Accounts) -> None:
    _ads(acc, spring_sale_drop=True)
    _daily_orders(acc)


async def budget_shift(acc: Accounts) -> None:
    _ads(acc, spring_sale_drop=False)
    _daily_orders(acc)


async def shop(acc: Accounts) -> None:
    now = datetime.combine(acc.today, time(9, 0), UTC)
    _add_order(acc.shop, 3, now - timedelta(days=1), [("HOOD-M", 1), ("CAP-1", 2)], "UNFULFILLED")
    _add_order(acc.shop, 2, now - timedelta(days=2), [("DASH-M", 2)], "FULFILLED")
    leads = [
        {"name": "Dana Whitfield", "email": "dana@northwindcafe.example", "company":
         "Northwind Cafe", "source": "website", "status": "new", "score": 80,
         "notes": "Asked for a quote on 40 embroidered hoodies for her staff.",
         "next_follow_up_at": now.isoformat()},
        {"name": "Marco Ruiz", "email": "marco@ruizcycling.example", "company": "Ruiz Cycling Club",
         "source": "meta_ads", "status": "contacted", "score": 55,
         "notes": "Sent the team-kit catalogue; call back next week.",
         "next_follow_up_at": (now + timedelta(days=6)).isoformat()},
        {"name": "Priya Nair", "email": "priya@example.com", "source": "referral",
         "status": "won", "score": 90, "notes": "Ordered 12 caps."},
    ]  # fmt: skip
    for lead in leads:
        response = await acc.client.post("/v1/data/leads", json=lead)
        if response.status_code != 201:
            raise SeedError(f"adding a lead: HTTP {response.status_code} {response.text[:200]}")


SEEDS: dict[str, Callable[[Accounts], Coroutine[Any, Any, None]]] = {
    "roas_drop": roas_drop,
    "budget_shift": budget_shift,
    "shop": shop,
}


@asynccontextmanager
async def seeded(name: str, client: AsyncClient, services: Services) -> AsyncIterator[Accounts]:
    """A shop of its own, every service connected for the tenant of ``client``, the seed in."""
    token = f"eval-staff-{uuid.uuid4().hex}"
    with FakeSaleorServer(tokens=(token,)) as shop_server:
        accounts = await _connect(client, services, shop_server, token)
        await SEEDS[name](accounts)
        yield accounts
