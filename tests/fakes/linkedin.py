"""The LinkedIn Marketing API (``api_url``, the ``/rest`` root), wire-exact per
specs/external-apis.md: ad accounts, adAnalytics with Rest.li parameters, campaigns, partial
updates.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.responses import JSONResponse, Response

from tests.fakes.wire import FakeServer, RecordedRequest, Reject, _page_offset, _page_token

# -- LinkedIn Marketing API ---------------------------------------------------------------------


def _months(last: str, count: int) -> list[str]:
    year, month = int(last[:4]), int(last[4:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out


LINKEDIN_ERRORS: dict[int, dict[str, Any]] = {
    401: {
        "serviceErrorCode": 65602,
        "code": "EXPIRED_ACCESS_TOKEN",
        "message": "The token used in the request has expired",
    },
    403: {
        "serviceErrorCode": 100,
        "code": "ACCESS_DENIED",
        "message": "Not enough permissions to access: adAccounts.GET.20261001",
    },
    429: {
        "serviceErrorCode": 101,
        "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is "
        "reached.",
    },
    500: {"message": "Internal Server Error"},
}


LINKEDIN_ANALYTICS_FIELDS = frozenset(
    {
        "dateRange",
        "pivotValues",
        "impressions",
        "clicks",
        "costInLocalCurrency",
        "externalWebsiteConversions",
    }
)
LINKEDIN_CAMPAIGN_STATUSES = frozenset({"ACTIVE", "PAUSED", "ARCHIVED", "CANCELED", "DRAFT"})


def parse_restli(text: str) -> Any:
    """A Rest.li 2.0 query value, already percent-decoded: ``(k:v,...)`` objects, ``List(...)``
    lists, scalars (which may hold colons, like URNs). Raises ValueError."""
    value, end = _restli_value(text, 0)
    if end != len(text):
        raise ValueError(f"unexpected {text[end:]!r}")
    return value


def _restli_value(text: str, i: int) -> tuple[Any, int]:
    try:
        if text.startswith("List(", i):
            items: list[Any] = []
            i += len("List(")
            while text[i] != ")":
                item, i = _restli_value(text, i)
                items.append(item)
                i += text[i] == ","
            return items, i + 1
        if text[i] == "(":
            obj: dict[str, Any] = {}
            i += 1
            while text[i] != ")":
                colon = text.index(":", i)
                obj[text[i:colon]], i = _restli_value(text, colon + 1)
                i += text[i] == ","
            return obj, i + 1
    except IndexError:
        raise ValueError("unbalanced parentheses") from None
    end = i
    while end < len(text) and text[end] not in ",()":
        end += 1
    return text[i:end], end


def _li_date(value: Any) -> str:
    return date(int(value["year"]), int(value["month"]), int(value["day"])).isoformat()


class FakeLinkedIn(FakeServer):
    """``GET /rest/adAccounts/{id}`` of the LinkedIn Marketing API.

    Every call needs ``LinkedIn-Version: YYYYMM`` (missing: 400; not in ``active_versions``, the
    12 months up to 202610 by default: 426) and ``X-Restli-Protocol-Version: 2.0.0`` (LinkedIn
    itself would fall back to protocol 1.0 encoding; the fake refuses with 400 so a client that
    forgets it is caught). ``tokens`` maps a token to the account ids it may read (None: all);
    ``expired_tokens`` / ``revoked_tokens`` answer 65602 / 65601. ``accounts``: id -> account.

    Campaigns and analytics: seed ``add_campaign`` and ``add_daily_stats``. ``adAnalytics``
    (q=analytics, pivot=CAMPAIGN, timeGranularity=DAILY) parses its Rest.li parameters whether
    commas and colons arrive literal or percent-encoded, and answers only the accounts the token
    may read (an account it may not read simply has no rows, as on LinkedIn). ``adCampaigns``
    (q=search) pages by ``pageSize`` capped at ``page_size``, with ``metadata.nextPageToken``.
    ``POST .../adCampaigns/{id}`` with ``X-RestLi-Method: PARTIAL_UPDATE`` applies
    ``{"patch": {"$set": ...}}`` (status, dailyBudget in the account's currency, name), answers
    204 and logs the change in ``writes``.
    """

    name = "fake-linkedin"
    ROUTES = (
        ("GET", r"/rest/adAccounts/(?P<account_id>[^/]+)", "ad_account"),
        ("GET", r"/rest/adAnalytics", "ad_analytics"),
        ("GET", r"/rest/adAccounts/(?P<account_id>[^/]+)/adCampaigns", "ad_campaigns"),
        (
            "POST",
            r"/rest/adAccounts/(?P<account_id>[^/]+)/adCampaigns/(?P<campaign_id>[^/]+)",
            "update_campaign",
        ),
    )

    def __init__(
        self,
        *,
        tokens: dict[str, set[int] | None] | None = None,
        expired_tokens: Iterable[str] = (),
        revoked_tokens: Iterable[str] = (),
        accounts: dict[int, dict[str, Any]] | None = None,
        active_versions: Iterable[str] | None = None,
        page_size: int = 1000,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            set(revoked_tokens),
            dict(accounts or {}),
            set(active_versions if active_versions is not None else _months("202610", 12)),
        )
        self._page_size = page_size
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, revoked, accounts, versions = copy.deepcopy(self._config)
        self.tokens: dict[str, set[int] | None] = tokens
        self.expired_tokens: set[str] = expired
        self.revoked_tokens: set[str] = revoked
        self.accounts: dict[int, dict[str, Any]] = accounts
        self.active_versions: set[str] = versions
        self.page_size = self._page_size
        self.campaigns: dict[int, dict[str, Any]] = {}
        self.stats: list[dict[str, Any]] = []
        self.writes: list[tuple[int, dict[str, Any]]] = []  # (campaign id, fields set)

    @property
    def api_url(self) -> str:
        """The ``/rest`` root (settings.linkedin_api_url)."""
        return f"{self.base_url}/rest"

    def add_token(self, token: str, accounts: Iterable[int] | None = None) -> None:
        self.tokens[token] = None if accounts is None else set(accounts)

    def add_campaign(
        self,
        account_id: int,
        campaign_id: int,
        name: str,
        *,
        status: str = "ACTIVE",
        daily_budget: str | None = "100",
    ) -> dict[str, Any]:
        """A campaign of a seeded account; its budget is in the account's currency."""
        currency = self.accounts[account_id]["currency"]
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name,
            "status": status,
            "account": f"urn:li:sponsoredAccount:{account_id}",
            "campaignGroup": f"urn:li:sponsoredCampaignGroup:{account_id % 1_000_000}",
            "type": "SPONSORED_UPDATES",
            "costType": "CPM",
            "test": False,
            "version": {"versionTag": "1"},
        }
        if daily_budget is not None:
            campaign["dailyBudget"] = {"amount": daily_budget, "currencyCode": currency}
        self.campaigns[campaign_id] = campaign
        return campaign

    def add_daily_stats(
        self,
        campaign_id: int,
        day: str,
        *,
        impressions: int,
        clicks: int,
        cost: str,
        conversions: int = 0,
    ) -> None:
        self.stats.append(
            {
                "campaign_id": campaign_id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "costInLocalCurrency": cost,
                "externalWebsiteConversions": conversions,
            }
        )

    def add_account(
        self, account_id: int, *, name: str = "Opshub Test Account", **fields: Any
    ) -> dict[str, Any]:
        account = {
            "id": account_id,
            "name": name,
            "currency": "EUR",
            "status": "ACTIVE",
            "type": "BUSINESS",
            "reference": f"urn:li:organization:{account_id % 100_000_000}",
            "test": False,
            "servingStatuses": ["RUNNABLE"],
            "notifiedOnCampaignOptimization": True,
            "notifiedOnCreativeApproval": True,
            "notifiedOnCreativeRejection": True,
            "notifiedOnEndOfCampaign": True,
            "version": {"versionTag": "1"},
            **fields,
        }
        self.accounts[account_id] = account
        return account

    def script_error(
        self,
        status: int,
        *,
        route: str = "ad_account",
        service_error_code: int | None = None,
        code: str | None = None,
        message: str | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a LinkedIn error, ``{"status", "serviceErrorCode"?, "code"?, "message"}``."""
        body: dict[str, Any] = {"status": status, **LINKEDIN_ERRORS.get(status, {})}
        body.setdefault("message", "Error")
        given = {"serviceErrorCode": service_error_code, "code": code, "message": message}
        body.update({k: v for k, v in given.items() if v is not None})
        self.script(route, status, body, latency=latency, times=times)

    @staticmethod
    def _error(
        status: int, message: str, code: str | None = None, service: int | None = None
    ) -> Reject:
        body: dict[str, Any] = {"status": status}
        if service is not None:
            body["serviceErrorCode"] = service
        if code is not None:
            body["code"] = code
        body["message"] = message
        return Reject(status, body)

    def _authenticate(self, req: RecordedRequest) -> tuple[str, set[int] | None]:
        version = req.headers.get("linkedin-version")
        if not version:
            raise self._error(
                400,
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        if not re.fullmatch(r"\d{6}(\.\d{2})?", version):
            raise self._error(400, f"Invalid version format: {version}", "INVALID_VERSION")
        if version[:6] not in self.active_versions:
            raise self._error(
                426, f"Requested version {version} is not active", "NONEXISTENT_VERSION"
            )
        if req.headers.get("x-restli-protocol-version") != "2.0.0":
            raise self._error(
                400,
                "The X-Restli-Protocol-Version header must be 2.0.0 for this API",
                "ILLEGAL_ARGUMENT",
            )
        token = req.bearer
        if token is None:
            raise self._error(401, "Empty oauth2_access_token", "EMPTY_ACCESS_TOKEN", 65604)
        if token in self.expired_tokens:
            raise self._error(
                401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN", 65602
            )
        if token in self.revoked_tokens:
            raise self._error(
                401,
                "The token used in the request has been revoked by the user",
                "REVOKED_ACCESS_TOKEN",
                65601,
            )
        if token not in self.tokens:
            raise self._error(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        return version, self.tokens[token]

    def _headers(self) -> dict[str, str]:
        return {"x-restli-protocol-version": "2.0.0", "x-li-uuid": secrets.token_urlsafe(16)}

    async def _ad_account(self, req: RecordedRequest, account_id: str) -> Response:
        version, allowed = self._authenticate(req)
        if scripted := await self._scripted("ad_account"):
            return scripted
        if not account_id.isdigit():
            raise self._error(400, f"Invalid key: {account_id}", "ILLEGAL_ARGUMENT", 100)
        account = self.accounts.get(int(account_id))
        if account is None or (allowed is not None and int(account_id) not in allowed):
            raise self._error(
                403,
                f"Not enough permissions to access: adAccounts.GET.{version[:6]}01",
                "ACCESS_DENIED",
                100,
            )
        return JSONResponse(account, headers=self._headers())

    def _reachable(self, req: RecordedRequest, account_id: str) -> dict[str, Any]:
        """The account, after the checks every call makes and the token's access to it."""
        version, allowed = self._authenticate(req)
        if not account_id.isdigit():
            raise self._error(400, f"Invalid key: {account_id}", "ILLEGAL_ARGUMENT", 100)
        account = self.accounts.get(int(account_id))
        if account is None or (allowed is not None and int(account_id) not in allowed):
            raise self._error(
                403,
                f"Not enough permissions to access: adCampaigns.GET.{version[:6]}01",
                "ACCESS_DENIED",
                100,
            )
        return account

    def _restli(self, req: RecordedRequest, name: str) -> Any:
        try:
            return parse_restli(req.params[name])
        except (KeyError, ValueError) as exc:
            raise self._error(
                400, f"Invalid value for param {name}: {exc}", "ILLEGAL_ARGUMENT", 100
            ) from None

    async def _ad_analytics(self, req: RecordedRequest) -> Response:
        _, allowed = self._authenticate(req)
        if scripted := await self._scripted("ad_analytics"):
            return scripted
        p = req.params
        if (p.get("q"), p.get("pivot"), p.get("timeGranularity")) != (
            "analytics",
            "CAMPAIGN",
            "DAILY",
        ):
            raise self._error(
                400, "The fake answers q=analytics&pivot=CAMPAIGN&timeGranularity=DAILY only"
            )
        date_range, accounts = self._restli(req, "dateRange"), self._restli(req, "accounts")
        try:
            start = _li_date(date_range["start"])
            end = _li_date(date_range["end"]) if "end" in date_range else "9999-12-31"
            urns = [re.fullmatch(r"urn:li:sponsoredAccount:(\d+)", a) for a in accounts]
            ids = {int(m[1]) for m in urns if m is not None}
            if len(ids) != len(accounts) or not ids:
                raise ValueError("accounts must be sponsoredAccount URNs")
        except (KeyError, TypeError, ValueError):
            raise self._error(
                400, "Invalid dateRange or accounts", "ILLEGAL_ARGUMENT", 100
            ) from None
        fields = p.get("fields", "impressions,clicks").split(",")
        if unknown := set(fields) - LINKEDIN_ANALYTICS_FIELDS:
            raise self._error(400, f"Unknown fields: {sorted(unknown)}", "ILLEGAL_ARGUMENT", 100)
        readable = {i for i in ids if i in self.accounts and (allowed is None or i in allowed)}
        elements = []
        for stat in sorted(self.stats, key=lambda s: (s["date"], s["campaign_id"])):
            campaign = self.campaigns[stat["campaign_id"]]
            account_id = int(campaign["account"].rsplit(":", 1)[1])
            if account_id not in readable or not start <= stat["date"] <= end:
                continue
            year, month, day = (int(x) for x in stat["date"].split("-"))
            values = {
                **stat,
                "dateRange": {
                    "start": {"year": year, "month": month, "day": day},
                    "end": {"year": year, "month": month, "day": day},
                },
                "pivotValues": [f"urn:li:sponsoredCampaign:{stat['campaign_id']}"],
            }
            elements.append({f: values[f] for f in fields})
        paging = {"start": 0, "count": 10, "links": []}
        return JSONResponse({"elements": elements, "paging": paging}, headers=self._headers())

    async def _ad_campaigns(self, req: RecordedRequest, account_id: str) -> Response:
        account = self._reachable(req, account_id)
        if scripted := await self._scripted("ad_campaigns"):
            return scripted
        if req.params.get("q") != "search":
            raise self._error(400, "The fake answers q=search only", "ILLEGAL_ARGUMENT", 100)
        statuses = None
        if "search" in req.params:
            search = self._restli(req, "search")
            if not isinstance(search, dict) or set(search) != {"status"}:
                raise self._error(400, "The fake searches by status only", "ILLEGAL_ARGUMENT")
            statuses = set(search["status"]["values"])
        size = req.params.get("pageSize", "100")
        if not size.isdigit() or not 1 <= int(size) <= 1000:
            raise self._error(400, "pageSize must be 1 to 1000", "ILLEGAL_ARGUMENT", 100)
        matching = [
            c
            for _, c in sorted(self.campaigns.items())
            if c["account"] == f"urn:li:sponsoredAccount:{account['id']}"
            and (statuses is None or c["status"] in statuses)
        ]
        scope = f"campaigns-{account['id']}-{sorted(statuses or [])}"
        offset = 0
        if "pageToken" in req.params:
            found = _page_offset(req.params["pageToken"], scope)
            if found is None or found > len(matching):
                raise self._error(400, "Invalid pageToken", "ILLEGAL_ARGUMENT", 100)
            offset = found
        end = offset + min(int(size), self.page_size)
        metadata = {"nextPageToken": _page_token(end, scope)} if end < len(matching) else {}
        body = {"elements": matching[offset:end], "metadata": metadata}
        return JSONResponse(body, headers=self._headers())

    async def _update_campaign(
        self, req: RecordedRequest, account_id: str, campaign_id: str
    ) -> Response:
        account = self._reachable(req, account_id)
        if req.headers.get("x-restli-method", "").upper() != "PARTIAL_UPDATE":
            raise self._error(
                400, "A POST to an entity needs X-RestLi-Method: PARTIAL_UPDATE", "ILLEGAL_ARGUMENT"
            )
        campaign = self.campaigns.get(int(campaign_id)) if campaign_id.isdigit() else None
        if campaign is None or campaign["account"] != f"urn:li:sponsoredAccount:{account['id']}":
            raise self._error(404, f"Campaign {campaign_id} not found", "NOT_FOUND")
        if scripted := await self._scripted("update_campaign"):
            return scripted
        body = req.body if isinstance(req.body, dict) else {}
        changes = (body.get("patch") or {}).get("$set")
        if not isinstance(changes, dict) or not changes:
            raise self._error(400, "The body must be {patch: {$set: {...}}}", "ILLEGAL_ARGUMENT")
        self._check_patch(changes, account["currency"])
        campaign.update(copy.deepcopy(changes))
        campaign["version"] = {"versionTag": str(int(campaign["version"]["versionTag"]) + 1)}
        self.writes.append((int(campaign_id), changes))
        return Response(status_code=204, headers=self._headers())

    def _check_patch(self, changes: dict[str, Any], currency: str) -> None:
        for name, value in changes.items():
            if name == "status" and value not in LINKEDIN_CAMPAIGN_STATUSES:
                raise self._error(400, f"Invalid status {value}", "INVALID_VALUE", 100)
            if name == "dailyBudget":
                budget = value if isinstance(value, dict) else {}
                try:
                    positive = Decimal(str(budget.get("amount"))) > 0
                except ArithmeticError:
                    positive = False
                if not positive:
                    raise self._error(400, "dailyBudget.amount must be positive", "INVALID_VALUE")
                if budget.get("currencyCode") != currency:
                    raise self._error(
                        400,
                        f"dailyBudget.currencyCode must be the account currency {currency}",
                        "INVALID_VALUE",
                    )
            if name not in ("status", "dailyBudget", "name"):
                raise self._error(400, f"The fake cannot set {name}", "ILLEGAL_ARGUMENT")
