-- What the dashboards read. Every statement names the tenant besides RLS, as elsewhere.
-- A task without a crew is a router question (answered without a crew): it counts as "router".

-- crew_stats --
-- :since: midnight UTC today. Runs today: tasks started since then; running now: whatever runs.
SELECT coalesce(crew, 'router') AS crew,
       count(*) FILTER (WHERE started_at >= :since) AS runs_today,
       count(*) FILTER (WHERE started_at >= :since AND status = 'succeeded') AS succeeded_today,
       count(*) FILTER (WHERE started_at >= :since AND status = 'failed') AS failed_today,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM finished_at - started_at)::float8
       ) FILTER (WHERE started_at >= :since AND finished_at IS NOT NULL) AS p50_duration_seconds,
       coalesce(sum(input_tokens) FILTER (WHERE started_at >= :since), 0) AS input_tokens,
       coalesce(sum(output_tokens) FILTER (WHERE started_at >= :since), 0) AS output_tokens,
       coalesce(sum(cost_usd) FILTER (WHERE started_at >= :since), 0) AS cost_usd,
       count(*) FILTER (WHERE status = 'running') AS running_now
FROM tasks
WHERE tenant_id = :tenant_id AND (started_at >= :since OR status = 'running')
GROUP BY 1

-- last_errors --
-- Each crew's latest failed task, however long ago.
SELECT DISTINCT ON (coalesce(crew, 'router'))
       coalesce(crew, 'router') AS crew, id AS task_id, error, finished_at
FROM tasks
WHERE tenant_id = :tenant_id AND status = 'failed'
ORDER BY coalesce(crew, 'router'), finished_at DESC NULLS LAST, id DESC

-- usage --
-- Usage from :start to :end (days, both included, UTC) by :group_by: day, crew or provider.
-- The crew is the task's ("other" for usage recorded outside a task); BYOK run fees are the
-- platform's, under provider "opshub", apart from any model provider's calls.
WITH used AS (
    SELECT CASE :group_by::text
               WHEN 'day' THEN to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
               WHEN 'crew' THEN
                   CASE WHEN t.id IS NULL THEN 'other' ELSE coalesce(t.crew, 'router') END
               ELSE u.provider
           END AS key,
           u.kind = 'model_call' AND u.billed_to = 'byok' AS byok,
           u.kind = 'model_call' AND u.billed_to = 'platform' AS platform,
           u.kind = 'run_fee' AS run_fee,
           u.input_tokens, u.output_tokens, u.cost_usd
    FROM usage_records u
    LEFT JOIN tasks t ON :group_by::text = 'crew' AND t.tenant_id = u.tenant_id AND t.id = u.task_id
    WHERE u.tenant_id = :tenant_id
      AND u.created_at >= :start::date::timestamp AT TIME ZONE 'UTC'
      AND u.created_at < (:end::date + 1)::timestamp AT TIME ZONE 'UTC'
)
SELECT key,
       count(*) FILTER (WHERE byok) AS byok_calls,
       coalesce(sum(input_tokens) FILTER (WHERE byok), 0) AS byok_input_tokens,
       coalesce(sum(output_tokens) FILTER (WHERE byok), 0) AS byok_output_tokens,
       coalesce(sum(cost_usd) FILTER (WHERE byok), 0) AS byok_cost_usd,
       count(*) FILTER (WHERE platform) AS platform_calls,
       coalesce(sum(input_tokens) FILTER (WHERE platform), 0) AS platform_input_tokens,
       coalesce(sum(output_tokens) FILTER (WHERE platform), 0) AS platform_output_tokens,
       coalesce(sum(cost_usd) FILTER (WHERE platform), 0) AS platform_cost_usd,
       coalesce(sum(cost_usd) FILTER (WHERE run_fee), 0) AS run_fees_usd
FROM used
GROUP BY key
ORDER BY key

-- recent_tasks --
SELECT id, crew, status, left(input, :preview_chars) AS input, error, cost_usd,
       created_at, started_at, finished_at
FROM tasks
WHERE tenant_id = :tenant_id
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- next_runs --
SELECT id AS schedule_id, crew, left(input, :preview_chars) AS input, cron, timezone, next_run_at
FROM schedules
WHERE tenant_id = :tenant_id AND enabled AND next_run_at IS NOT NULL
ORDER BY next_run_at, id
LIMIT :limit
