"""The crew evals' scenario files and scorer (bench/evals), without a hub or a model.

Every committed scenario loads against the hub's real crews and action kinds; a scenario naming
a tool its crew lacks, an unknown crew or an unknown action kind is refused with a message that
says which; the scorer turns a hand-made run (the API's task, events and actions) into the
right passes and failures; the two texts it reads from the hub still match the hub's own.
"""

from __future__ import annotations

import asyncio
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args

import pytest
from bench.evals import scenarios as sc
from bench.evals import seeds

MARKETING = """
name: shift
crew: marketing
request: Move 20 USD a day from Google Search to Meta Spring Sale.
seed: budget_shift
must_call: [ad_campaigns, propose_budget_change]
must_not_call: [propose_campaign_status]
must_propose:
  - kind: ads.budget_change
    payload: {channel: google_ads, daily_budget: 40}
  - kind: ads.budget_change
    payload: {channel: meta_ads, daily_budget: 65}
must_contain:
  - Spring Sale
  - [Meta, Facebook]
"""


def write(directory: Path, text: str, name: str = "shift") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def refusal(tmp_path: Path, text: str, name: str = "shift") -> str:
    with pytest.raises(sc.ScenarioError) as raised:
        sc.load(write(tmp_path, text, name))
    return str(raised.value)


def run(**fields: Any) -> sc.Observed:
    good: dict[str, Any] = {
        "status": "awaiting_approval",
        "crew": "marketing",
        "tools": ("ad_campaigns", "ad_campaigns", "propose_budget_change", "propose_budget_change"),
        "proposals": (
            ("ads.budget_change", {"channel": "meta_ads", "daily_budget": "65.00"}),
            ("ads.budget_change", {"channel": "google_ads", "daily_budget": "40"}),
        ),
        "answer": "Spring Sale on META goes up to 65 USD a day.",
    }
    return sc.Observed(**(good | fields))


def failed(checks: list[sc.Check]) -> list[str]:
    return [c.name for c in checks if not c.passed]


@pytest.fixture
def shift(tmp_path: Path) -> sc.Scenario:
    return sc.load(write(tmp_path, MARKETING))


def test_every_committed_scenario_loads_and_names_a_seed_the_runner_builds() -> None:
    every = sc.load_all()

    assert len(every) >= 6
    assert len({s.name for s in every}) == len(every)
    assert set(get_args(sc.Seed)) == set(seeds.SEEDS)  # the names a file may use, all built


def test_a_tool_the_crew_does_not_have_is_refused_naming_the_crew_and_the_tool(
    tmp_path: Path,
) -> None:
    text = MARKETING.replace("must_call: [ad_campaigns,", "must_call: [shop_orders,")

    message = refusal(tmp_path, text)

    assert "shift.yaml" in message
    assert "the marketing crew has no tool 'shop_orders'" in message
    assert "propose_budget_change" in message  # the tools it does have


def test_a_routed_scenario_may_name_any_crews_tool_unless_it_says_where_it_goes(
    tmp_path: Path,
) -> None:
    routed = MARKETING.replace("crew: marketing", "crew: null")
    assert sc.load(write(tmp_path, routed.replace("ad_campaigns", "shop_orders"))).crew is None

    message = refusal(
        tmp_path, routed.replace("ad_campaigns", "shop_orders") + "route_to: marketing\n"
    )

    assert "the marketing crew has no tool 'shop_orders'" in message


def test_an_unknown_crew_is_refused_with_the_crews_there_are(tmp_path: Path) -> None:
    message = refusal(tmp_path, MARKETING.replace("crew: marketing", "crew: finance"))

    assert "unknown crew 'finance'" in message
    assert "marketing, analytics, ecommerce, operations" in message


def test_an_unknown_action_kind_is_refused_with_the_kinds_there_are(tmp_path: Path) -> None:
    message = refusal(
        tmp_path, MARKETING.replace("kind: ads.budget_change", "kind: ads.bid_change", 1)
    )

    assert "must_propose.0" in message
    assert "ads.bid_change" in message and "'ads.budget_change'" in message


def test_a_payload_field_the_kind_does_not_carry_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, MARKETING.replace("daily_budget: 40", "budget: 40"))

    assert "ads.budget_change payloads have no field budget" in message


def test_an_unknown_seed_or_field_and_a_name_that_is_not_the_files_are_refused(
    tmp_path: Path,
) -> None:
    assert "seed" in refusal(tmp_path, MARKETING.replace("seed: budget_shift", "seed: bakery"))
    assert "must_mention" in refusal(tmp_path, MARKETING + "must_mention: [x]\n")
    assert "differs from the file's name" in refusal(tmp_path, MARKETING, name="other")


def test_a_good_run_passes_every_check_in_the_scenarios_order(shift: sc.Scenario) -> None:
    checks = sc.score(shift, run())

    assert failed(checks) == []
    assert [c.name for c in checks] == [
        "ends",
        "calls ad_campaigns",
        "calls propose_budget_change",
        "does not call propose_campaign_status",
        "proposes ads.budget_change (channel=google_ads, daily_budget=40)",
        "proposes ads.budget_change (channel=meta_ads, daily_budget=65)",
        "answer mentions 'Spring Sale'",
        "answer mentions 'Meta' or 'Facebook'",
    ]


def test_a_missing_call_a_forbidden_call_and_a_missing_fact_each_fail_their_check(
    shift: sc.Scenario,
) -> None:
    checks = sc.score(
        shift,
        run(tools=("propose_budget_change", "propose_campaign_status"), answer="Budgets moved."),
    )

    assert failed(checks) == [
        "calls ad_campaigns",
        "does not call propose_campaign_status",
        "answer mentions 'Spring Sale'",
        "answer mentions 'Meta' or 'Facebook'",
    ]


def test_a_proposal_with_the_wrong_amount_fails_and_one_proposal_meets_one_expectation(
    shift: sc.Scenario,
) -> None:
    wrong = run(proposals=(("ads.budget_change", {"channel": "meta_ads", "daily_budget": "70"}),))
    once = run(proposals=(("ads.budget_change", {"channel": "meta_ads", "daily_budget": "65"}),))

    wrong_checks = {c.name: c for c in sc.score(shift, wrong)}
    meta = "proposes ads.budget_change (channel=meta_ads, daily_budget=65)"
    google = "proposes ads.budget_change (channel=google_ads, daily_budget=40)"
    assert not wrong_checks[meta].passed
    assert wrong_checks[meta].detail == "channel=meta_ads, daily_budget=70"
    assert failed(sc.score(shift, once)) == [google]


def test_a_failed_run_fails_its_first_check_with_the_error(shift: sc.Scenario) -> None:
    checks = sc.score(shift, run(status="failed", error="model_error: rate limited"))

    assert checks[0] == sc.Check("ends", False, "failed (model_error: rate limited)")


def test_observing_reads_tools_proposals_usage_and_the_answer_without_the_hubs_note() -> None:
    task = {
        "status": "awaiting_approval",
        "crew": "marketing",
        "result": "Plan: Spring Sale up." + sc.APPROVAL_NOTE + "\n- Change the daily budget ...",
        "error": None,
        "usage": {"input_tokens": 1200, "output_tokens": 300, "cost_usd": "0.000960"},
    }
    events = [
        {"type": "task.started", "seq": 1},
        {"type": "tool.call", "tool": "ad_campaigns", "seq": 2},
        {"type": "tool.result", "tool": "ad_campaigns", "seq": 3},
        {"type": "tool.call", "tool": "propose_budget_change", "seq": 4},
    ]
    actions = [{"kind": "ads.budget_change", "payload": {"daily_budget": "65"}}]

    seen = sc.observe(task, events, actions)

    assert seen.tools == ("ad_campaigns", "propose_budget_change")
    assert seen.proposals == (("ads.budget_change", {"daily_budget": "65"}),)
    assert seen.answer == "Plan: Spring Sale up."
    assert (seen.input_tokens, seen.output_tokens, seen.cost_usd) == (1200, 300, Decimal("0.00096"))


def test_a_question_counts_only_when_the_model_asked_it_not_the_hubs_fallback(
    tmp_path: Path,
) -> None:
    vague = "name: vague\ncrew: null\nrequest: Fix it.\nseed: shop\nexpect_question: true\n"
    ambiguous = sc.load(write(tmp_path, vague, "vague"))
    task = {"status": "succeeded", "crew": None, "result": "Which campaign?", "usage": {}}

    def asked(reason: str) -> list[sc.Check]:
        routed = [{"type": "task.routed", "crew": None, "text": reason}]
        return sc.score(ambiguous, sc.observe(task, routed, []))

    assert failed(asked("It could be a campaign or an order.")) == []
    assert failed(asked(sc.ROUTER_FALLBACK_REASON)) == ["asks back"]
    assert failed(sc.score(ambiguous, sc.observe({**task, "crew": "ops"}, [], []))) == ["asks back"]


def test_the_texts_the_scorer_reads_from_the_hub_are_the_hubs_own() -> None:
    from opshub.crews.registry import CREWS
    from opshub.crews.routing import decide
    from opshub.runtime.run_outcome import awaiting_note

    class UnreadableModel:  # answers in prose where the router wants JSON
        def call(self, *_: object, **__: object) -> str:
            return "Sure! I can help with that."

    decision = asyncio.run(decide(UnreadableModel(), CREWS, [], "Fix it."))  # type: ignore[arg-type]

    assert decision.reason == sc.ROUTER_FALLBACK_REASON
    assert awaiting_note([]).startswith(sc.APPROVAL_NOTE)
