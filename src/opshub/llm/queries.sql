-- insert_usage --
INSERT INTO usage_records
    (tenant_id, task_id, provider, model, input_tokens, output_tokens, cached_tokens, cost_usd,
        billed_to)
VALUES (:tenant_id, :task_id, :provider, :model, :input_tokens, :output_tokens, :cached_tokens,
    :cost_usd, :billed_to)

-- billable_this_month --
-- What the platform bills: model calls on its own keys, plus the fee of each BYOK run.
SELECT coalesce(sum(cost_usd) FILTER (WHERE billed_to = 'platform' OR kind = 'run_fee'), 0)
FROM usage_records
WHERE tenant_id = :tenant_id
  AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'

-- platform_spend_this_month --
-- Platform-paid spend since the first of this month, UTC.
SELECT coalesce(sum(cost_usd), 0) FROM usage_records
WHERE tenant_id = :tenant_id AND billed_to = 'platform' AND kind = 'model_call'
  AND created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'

-- get_budget --
SELECT monthly_platform_usd FROM tenant_budgets WHERE tenant_id = :tenant_id

-- put_budget --
INSERT INTO tenant_budgets (tenant_id, monthly_platform_usd)
VALUES (:tenant_id, :monthly_platform_usd)
ON CONFLICT (tenant_id) DO UPDATE SET monthly_platform_usd = EXCLUDED.monthly_platform_usd,
    updated_at = now()

-- delete_budget --
DELETE FROM tenant_budgets WHERE tenant_id = :tenant_id

-- get_fallback --
SELECT provider, model FROM tenant_model_fallbacks WHERE tenant_id = :tenant_id

-- put_fallback --
INSERT INTO tenant_model_fallbacks (tenant_id, provider, model)
VALUES (:tenant_id, :provider, :model)
ON CONFLICT (tenant_id) DO UPDATE SET provider = EXCLUDED.provider, model = EXCLUDED.model,
    updated_at = now()

-- delete_fallback --
DELETE FROM tenant_model_fallbacks WHERE tenant_id = :tenant_id
