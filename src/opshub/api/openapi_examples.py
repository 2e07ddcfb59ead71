"""An example request body per operation, for /docs and generated clients (checked by tests to
be valid requests)."""

from __future__ import annotations

from typing import Any

_CLIENT = {"name": "Acme Outdoor", "industry": "Outdoor gear", "email": "ops@acme.example"}
_LEAD = {"name": "Jane Doe", "email": "jane@example.com", "company": "Trail Co", "score": 70}
_CAMPAIGN = {
    "name": "Spring Sale",
    "channel": "meta_ads",
    "daily_budget": "40.00",
    "currency": "USD",
}
_REPORT = {"title": "Weekly ad spend", "kind": "ads", "body": "Spend rose 12% on Meta."}

EXAMPLES: dict[str, Any] = {
    "create_token": {"email": "owner@acme.example", "password": "correct horse battery"},
    "create_key": {"name": "ci", "role": "member"},
    "put_credential": {"secret": {"api_key": "sk-…"}, "label": "team key"},
    "put_budget": {"monthly_platform_usd": "200.00"},
    "put_fallback": {"fallback": {"provider": "anthropic", "model": "claude-sonnet-4-5"}},
    "create_tenant": {
        "name": "Acme Outdoor",
        "owner_email": "owner@acme.example",
        "password": "correct horse battery",
    },
    "submit_task": {
        "crew": "analytics",
        "input": "Why did ROAS drop last week on Meta?",
        "webhook_url": "https://hooks.acme.example/opshub",
    },
    "put_crew_settings": {"provider": "openai", "model": "gpt-4o-mini"},
    "create_thread": {"title": "Spring campaign"},
    "post_message": {"content": "Which of our clients came from the spring campaign?"},
    "create_schedule": {
        "crew": "analytics",
        "input": "Report ad spend by channel",
        "cron": "0 9 * * MON",
        "timezone": "Europe/Berlin",
    },
    "update_schedule": {"enabled": False},
    "approve_action": {"reason": "Within this month's budget"},
    "reject_action": {"reason": "The price is wrong"},
    "put_policies": {
        "rules": [
            {
                "kind": "ads.budget_change",
                "auto_approve": True,
                "max_amount": "50.00",
                "currency": "USD",
            }
        ]
    },
    "rotate_webhook_secret": {"overlap_seconds": 86400},
    "add_memory": {
        "content": "Acme wants proposals by email, never by post.",
        "subject": "acme.contact",
    },
    "import_memories": {
        "memories": [
            {"content": "Acme's fiscal year starts in April.", "scope": "crew:analytics"},
            {"content": "Ship orders over 200 EUR with tracking.", "kind": "preference"},
        ]
    },
    "update_memory_settings": {"extraction": False},
    "put_mcp_server": {
        "url": "https://mcp.acme.example/mcp",
        "secret": "mcp-token-…",
        "tools": ["lookup_order", "refund_order"],
        "crews": ["ecommerce"],
        "side_effecting_tools": ["refund_order"],
    },
    "create_client": _CLIENT,
    "update_client": {"notes": "Prefers calls on Tuesdays"},
    "import_clients": {"items": [_CLIENT]},
    "create_lead": _LEAD,
    "update_lead": {"status": "contacted"},
    "import_leads": {"items": [_LEAD]},
    "create_campaign": _CAMPAIGN,
    "update_campaign": {"status": "paused"},
    "import_campaigns": {"items": [_CAMPAIGN]},
    "create_report": _REPORT,
    "update_report": {"title": "Weekly ad spend (revised)"},
    "import_reports": {"items": [_REPORT]},
}
