"""The Graph / Marketing API v26.0 (``graph_url``), wire-exact per specs/external-apis.md: ``me``,
ad accounts, insights with cursor paging, campaigns and their updates, Meta's error codes.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response

from tests.fakes.wire import FakeServer, RecordedRequest, Reject, _page_offset, _page_token

META_ERRORS: dict[int, tuple[str, int | None, bool | None]] = {
    # code -> (message, error_subcode, is_transient)
    1: ("An unknown error occurred", None, True),
    2: ("An unexpected error has occurred. Please retry your request later.", None, True),
    4: ("(#4) Application request limit reached", None, True),
    17: ("(#17) User request limit reached", 2446079, True),
    32: ("(#32) Page request limit reached", None, True),
    100: ("(#100) Invalid parameter", None, None),
    190: (
        "Error validating access token: Session has expired on Sunday, 01-Nov-26 09:00:00 PST. "
        "The current time is Monday, 02-Nov-26 10:00:00 PST.",
        463,
        None,
    ),
    613: ("(#613) Calls to this api have exceeded the rate limit.", None, True),
    80000: (
        "(#80000) There have been too many calls from this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
    80003: ("(#80003) There have been too many calls to this ad-account.", 2446079, True),
    80004: (
        "(#80004) There have been too many calls to this ad-account. Wait a bit and try again.",
        2446079,
        True,
    ),
}


DEFAULT: Any = object()  # "the code's default" for meta_error_body; None leaves a key out


def meta_error_body(
    code: int,
    message: str | None = None,
    *,
    subcode: int | None = DEFAULT,
    error_type: str = "OAuthException",
    is_transient: bool | None = DEFAULT,
) -> dict[str, Any]:
    """``{"error": {...}}`` as Graph sends it; defaults per code from ``META_ERRORS``."""
    default_message, default_subcode, default_transient = META_ERRORS.get(
        code, (f"(#{code}) An error occurred", None, None)
    )
    error: dict[str, Any] = {
        "message": message or default_message,
        "type": error_type,
        "code": code,
    }
    if (subcode := default_subcode if subcode is DEFAULT else subcode) is not None:
        error["error_subcode"] = subcode
    if (transient := default_transient if is_transient is DEFAULT else is_transient) is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = secrets.token_urlsafe(16)[:23]
    return {"error": error}


META_INSIGHT_FIELDS = frozenset(
    {
        "account_id",
        "account_currency",
        "campaign_id",
        "campaign_name",
        "impressions",
        "clicks",
        "spend",
        "actions",
        "date_start",
        "date_stop",
    }
)
META_CAMPAIGN_FIELDS = frozenset(
    {
        "id",
        "name",
        "status",
        "effective_status",
        "objective",
        "daily_budget",
        "lifetime_budget",
        "account_id",
    }
)
META_CAMPAIGN_STATUSES = frozenset({"ACTIVE", "PAUSED", "DELETED", "ARCHIVED"})


@dataclass
class MetaAdAccount:
    id: str  # digits, without act_
    currency: str
    name: str
    tokens: set[str]  # the access tokens that may use it
    campaigns: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: list[dict[str, Any]] = field(default_factory=list)


class FakeMetaGraph(FakeServer):
    """``GET /v26.0/me`` (and ``/v25.0``) of the Graph API.

    ``tokens`` maps an access token to its user (``{"id", "name"}``); ``expired_tokens`` answer
    190/463; anything else 190 (cannot parse). ``app_secret`` set: an ``appsecret_proof`` that is
    sent must match it (``require_appsecret_proof``: it must be sent).

    Marketing API: seed ``add_ad_account`` (its currency and the tokens that may use it; any
    other token gets 100/33, "does not exist or missing permissions"), ``add_campaign`` (budgets
    in the currency's minor unit, as Graph keeps them) and ``add_daily_stats``. Reads are
    ``act_{id}`` (fields), ``act_{id}/insights`` (level=campaign, time_increment=1, a JSON
    ``time_range``) and ``act_{id}/campaigns``, cursor-paged by ``limit`` capped at
    ``page_size``, with ``paging.next`` only when more follows. ``POST /{campaign_id}`` sets
    ``status`` / ``daily_budget`` / ``name`` and logs the change in ``writes``.
    """

    name = "fake-meta-graph"
    SERVED_VERSIONS: ClassVar[tuple[str, ...]] = ("v25.0", "v26.0")
    ROUTES = (
        ("GET", r"/(?P<version>v\d+\.\d+)/me", "me"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)", "ad_account"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)/insights", "insights"),
        ("GET", r"/(?P<version>v\d+\.\d+)/act_(?P<account_id>\d+)/campaigns", "campaigns"),
        ("POST", r"/(?P<version>v\d+\.\d+)/(?P<object_id>\d+)", "update_campaign"),
    )

    def __init__(
        self,
        *,
        tokens: dict[str, dict[str, Any]] | None = None,
        expired_tokens: Iterable[str] = (),
        app_secret: str | None = None,
        require_appsecret_proof: bool = False,
        page_size: int = 5000,
    ) -> None:
        self._config = (
            dict(tokens or {}),
            set(expired_tokens),
            app_secret,
            require_appsecret_proof,
        )
        self._page_size = page_size
        super().__init__()

    def _restore(self) -> None:
        tokens, expired, app_secret, require_proof = copy.deepcopy(self._config)
        self.tokens: dict[str, dict[str, Any]] = tokens
        self.expired_tokens: set[str] = expired
        self.app_secret: str | None = app_secret
        self.require_appsecret_proof: bool = require_proof
        self.page_size = self._page_size
        self.ad_accounts: dict[str, MetaAdAccount] = {}
        self.writes: list[tuple[str, dict[str, str]]] = []  # (campaign id, fields set)

    @property
    def graph_url(self) -> str:
        """The Graph root of the current version (settings.meta_graph_url)."""
        return f"{self.base_url}/v26.0"

    def add_token(self, token: str, *, name: str = "Opshub Test User", **fields: Any) -> None:
        self.tokens[token] = {"id": str(uuid.uuid4().int)[:15], "name": name, **fields}

    # -- seeded ad accounts ---------------------------------------------------------------------
    def add_ad_account(
        self,
        account_id: str,
        *,
        currency: str = "EUR",
        name: str = "Opshub Test Ads",
        tokens: Iterable[str] = (),
    ) -> MetaAdAccount:
        """An ad account (``"act_123"`` or ``"123"``) that ``tokens`` may use."""
        digits = account_id.removeprefix("act_")
        account = MetaAdAccount(digits, currency, name, set(tokens))
        self.ad_accounts[digits] = account
        return account

    def add_campaign(
        self,
        account_id: str,
        campaign_id: str,
        name: str,
        *,
        status: str = "ACTIVE",
        daily_budget: int | None = None,
    ) -> dict[str, Any]:
        """A campaign; ``daily_budget`` in the currency's minor unit (cents for EUR)."""
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name,
            "status": status,
            "effective_status": status,
            "objective": "OUTCOME_SALES",
            "account_id": account_id.removeprefix("act_"),
        }
        if daily_budget is not None:
            campaign["daily_budget"] = str(daily_budget)
        self.ad_accounts[account_id.removeprefix("act_")].campaigns[campaign_id] = campaign
        return campaign

    def add_daily_stats(
        self,
        account_id: str,
        campaign_id: str,
        day: str,
        *,
        impressions: int,
        clicks: int,
        spend: str,
        actions: dict[str, int | str] | None = None,
    ) -> None:
        self.ad_accounts[account_id.removeprefix("act_")].stats.append(
            {
                "campaign_id": campaign_id,
                "date": day,
                "impressions": impressions,
                "clicks": clicks,
                "spend": spend,
                "actions": dict(actions or {}),
            }
        )

    def script_error(
        self,
        code: int,
        *,
        status: int | None = None,
        route: str = "me",
        message: str | None = None,
        subcode: int | None = DEFAULT,
        error_type: str = "OAuthException",
        is_transient: bool | None = DEFAULT,
        regain_access_minutes: float | None = None,
        latency: float = 0.0,
        times: int = 1,
    ) -> None:
        """Queue a Graph error; ``status=200`` sends it with HTTP 200, which Graph also does.
        ``subcode`` / ``is_transient``: the code's default (``META_ERRORS``), None to leave out.
        ``regain_access_minutes``: an ``X-Business-Use-Case-Usage`` header carrying it as
        ``estimated_time_to_regain_access`` (minutes; Graph sends integers, a fraction keeps a
        test short).

        Default status: 500 for codes 1 and 2, else 400.
        """
        body = meta_error_body(
            code, message, subcode=subcode, error_type=error_type, is_transient=is_transient
        )
        http_status = status if status is not None else (500 if code in (1, 2) else 400)
        headers = {}
        if regain_access_minutes is not None:
            usage = {
                "type": "ads_insights",
                "call_count": 100,
                "total_cputime": 40,
                "total_time": 60,
                "estimated_time_to_regain_access": regain_access_minutes,
            }
            business = str(uuid.uuid4().int)[:15]
            headers["X-Business-Use-Case-Usage"] = json.dumps({business: [usage]})
        self.script(route, http_status, body, headers=headers, latency=latency, times=times)

    @staticmethod
    def _error(code: int, message: str | None = None, **kwargs: Any) -> Reject:
        body = meta_error_body(code, message, **kwargs)
        headers = {}
        if code == 190:
            text = body["error"]["message"].replace('"', "'")
            headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "invalid_token" "{text}"'
        return Reject(400, body, headers)

    def _usage_headers(self, version: str) -> dict[str, str]:
        return {
            "x-app-usage": json.dumps({"call_count": 1, "total_cputime": 1, "total_time": 1}),
            "x-fb-trace-id": secrets.token_urlsafe(8),
            "x-fb-rev": "1020000000",
            "facebook-api-version": version,
        }

    @staticmethod
    def _token_of(req: RecordedRequest) -> str | None:
        form = req.body if isinstance(req.body, dict) else {}
        scheme, _, header_token = req.headers.get("authorization", "").partition(" ")
        token = req.params.get("access_token") or form.get("access_token")
        if not token and scheme.lower() in ("oauth", "bearer"):
            token = header_token.strip()
        return token or None

    def _user(self, req: RecordedRequest, version: str) -> dict[str, Any]:
        if version not in self.SERVED_VERSIONS:
            latest = self.SERVED_VERSIONS[-1]
            raise self._error(
                2635,
                f"(#2635) You are calling a deprecated version of the Ads API. "
                f"Please update to the latest version: {latest}.",
            )
        form = req.body if isinstance(req.body, dict) else {}
        token = self._token_of(req)
        if not token:
            raise self._error(
                2500,
                "An active access token must be used to query information about the current user.",
            )
        if token in self.expired_tokens:
            raise self._error(190)
        user = self.tokens.get(token)
        if user is None:
            raise self._error(
                190, "Invalid OAuth access token - Cannot parse access token", subcode=None
            )
        proof = req.params.get("appsecret_proof") or form.get("appsecret_proof")
        if self.app_secret is not None and (proof or self.require_appsecret_proof):
            expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256)
            if not proof:
                raise self._error(
                    100,
                    "API calls from the server require an appsecret_proof argument",
                    error_type="GraphMethodException",
                )
            if not hmac.compare_digest(proof, expected.hexdigest()):
                raise self._error(
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                    error_type="GraphMethodException",
                )
        return user

    async def _me(self, req: RecordedRequest, version: str) -> Response:
        user = self._user(req, version)
        if scripted := await self._scripted("me"):
            return scripted
        fields = [f for f in req.params.get("fields", "id,name").split(",") if f]
        unknown = [f for f in fields if f not in user]
        if unknown:
            raise self._error(
                100, f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (User)"
            )
        return JSONResponse({f: user[f] for f in fields}, headers=self._usage_headers(version))

    # -- Marketing API --------------------------------------------------------------------------
    @classmethod
    def _missing(cls, object_id: str, method: str) -> Reject:
        """What Graph answers for an object that is not there or not the caller's."""
        verb = "get" if method == "GET" else "post"
        return cls._error(
            100,
            f"Unsupported {verb} request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation. Please read "
            "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
            subcode=33,
            error_type="GraphMethodException",
        )

    def _account(self, req: RecordedRequest, version: str, account_id: str) -> MetaAdAccount:
        self._user(req, version)
        account = self.ad_accounts.get(account_id)
        if account is None or self._token_of(req) not in account.tokens:
            raise self._missing(f"act_{account_id}", req.method)
        return account

    def _fields(self, req: RecordedRequest, allowed: Iterable[str], node: str) -> list[str]:
        fields = [f for f in req.params.get("fields", "id").split(",") if f]
        for name in fields:
            if name not in allowed:
                raise self._error(
                    100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})"
                )
        return fields

    def _paged(self, req: RecordedRequest, items: list[Any], scope: str) -> dict[str, Any]:
        """``{"data", "paging"}`` for one page of ``items``: ``limit`` (capped at
        ``page_size``) from the ``after`` cursor, ``next`` only when more follows."""
        try:
            limit = min(int(req.params.get("limit", "25")), self.page_size)
        except ValueError:
            raise self._error(100, "(#100) Param limit must be an integer") from None
        offset = 0
        if "after" in req.params:
            found = _page_offset(req.params["after"], scope)
            if found is None or found > len(items):
                raise self._error(100, "(#100) The after cursor is invalid")
            offset = found
        chunk = items[offset : offset + limit]
        answer: dict[str, Any] = {"data": chunk}
        if chunk:
            after = _page_token(offset + len(chunk), scope)
            answer["paging"] = {"cursors": {"before": _page_token(offset, scope), "after": after}}
            if offset + len(chunk) < len(items):
                query = urlencode({**req.params, "after": after})
                answer["paging"]["next"] = f"{self.base_url}{req.path}?{query}"
        return answer

    async def _ad_account(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("ad_account"):
            return scripted
        values = {
            "id": f"act_{account.id}",
            "account_id": account.id,
            "name": account.name,
            "currency": account.currency,
            "account_status": 1,
        }
        fields = self._fields(req, values, "AdAccount")
        return JSONResponse({f: values[f] for f in ["id", *fields]})

    async def _insights(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("insights"):
            return scripted
        if req.params.get("level") != "campaign" or req.params.get("time_increment") != "1":
            raise self._error(100, "(#100) The fake answers level=campaign&time_increment=1 only")
        try:
            time_range = json.loads(req.params["time_range"])
            since, until = str(time_range["since"]), str(time_range["until"])
        except (KeyError, ValueError, TypeError):
            raise self._error(100, "(#100) Param time_range must be {since, until}") from None
        fields = self._fields(req, META_INSIGHT_FIELDS, "AdsInsights")
        stats = sorted(
            (s for s in account.stats if since <= s["date"] <= until),
            key=lambda s: (s["date"], s["campaign_id"]),
        )
        rows = [self._insight(account, stat, fields) for stat in stats]
        return JSONResponse(self._paged(req, rows, f"insights-{account.id}-{since}-{until}"))

    @staticmethod
    def _insight(account: MetaAdAccount, stat: dict[str, Any], fields: list[str]) -> dict[str, Any]:
        campaign = account.campaigns.get(stat["campaign_id"], {})
        values: dict[str, Any] = {
            "account_id": account.id,
            "campaign_id": stat["campaign_id"],
            "campaign_name": campaign.get("name", ""),
            "impressions": str(stat["impressions"]),
            "clicks": str(stat["clicks"]),
            "spend": str(stat["spend"]),
            "account_currency": account.currency,
        }
        if stat["actions"]:  # Graph leaves ``actions`` out when there are none
            values["actions"] = [
                {"action_type": kind, "value": str(value)}
                for kind, value in stat["actions"].items()
            ]
        row = {f: values[f] for f in fields if f in values}
        return {**row, "date_start": stat["date"], "date_stop": stat["date"]}

    async def _campaigns(self, req: RecordedRequest, version: str, account_id: str) -> Response:
        account = self._account(req, version, account_id)
        if scripted := await self._scripted("campaigns"):
            return scripted
        fields = self._fields(req, META_CAMPAIGN_FIELDS, "Campaign")
        rows = [
            {f: c[f] for f in ["id", *fields] if f in c}
            for _, c in sorted(account.campaigns.items())
        ]
        return JSONResponse(self._paged(req, rows, f"campaigns-{account.id}"))

    async def _update_campaign(
        self, req: RecordedRequest, version: str, object_id: str
    ) -> Response:
        self._user(req, version)
        token = self._token_of(req)
        owner = next((a for a in self.ad_accounts.values() if object_id in a.campaigns), None)
        if owner is None or token not in owner.tokens:
            raise self._missing(object_id, "POST")
        if scripted := await self._scripted("update_campaign"):
            return scripted
        form = req.body if isinstance(req.body, dict) else {}
        changes = {
            k: str(v) for k, v in form.items() if k not in ("access_token", "appsecret_proof")
        }
        if not changes:
            raise self._error(100, "(#100) No fields to update were given")
        for name, value in changes.items():
            if name == "status" and value not in META_CAMPAIGN_STATUSES:
                raise self._error(
                    100, "(#100) Param status must be one of {ACTIVE, PAUSED, DELETED, ARCHIVED}"
                )
            if name == "daily_budget" and not value.isdigit():
                raise self._error(100, "(#100) Param daily_budget must be an integer")
            if name not in ("status", "daily_budget", "name"):
                raise self._error(100, f"(#100) Param {name} is not a field this fake can set")
        campaign = owner.campaigns[object_id]
        campaign.update(changes)
        if "status" in changes:
            campaign["effective_status"] = changes["status"]
        self.writes.append((object_id, changes))
        return JSONResponse({"success": True})
