-- What the dashboards read. Every statement names the tenant besides RLS, as elsewhere.
-- A task without a crew is a router question (answered without a crew): it counts as "router".

-- crew_stats --
-- :since: midnight today in the viewer's zone. Runs today: tasks started since then; running now:
-- whatever runs. A run's duration is its work: from its start to its end or, for a run that
-- stopped to wait for approval, to that moment (the wait is a person's, not the crew's).
SELECT coalesce(t.crew, 'router') AS crew,
       count(*) FILTER (WHERE t.started_at >= :since) AS runs_today,
       count(*) FILTER (WHERE t.started_at >= :since AND t.status = 'succeeded') AS succeeded_today,
       count(*) FILTER (WHERE t.started_at >= :since AND t.status = 'failed') AS failed_today,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM coalesce(w.waited_at, t.finished_at) - t.started_at)::float8
       ) FILTER (
           WHERE t.started_at >= :since AND coalesce(w.waited_at, t.finished_at) IS NOT NULL
       ) AS p50_duration_seconds,
       coalesce(sum(t.input_tokens) FILTER (WHERE t.started_at >= :since), 0) AS input_tokens,
       coalesce(sum(t.output_tokens) FILTER (WHERE t.started_at >= :since), 0) AS output_tokens,
       coalesce(sum(t.cost_usd) FILTER (WHERE t.started_at >= :since), 0) AS cost_usd,
       count(*) FILTER (WHERE t.status = 'running') AS running_now
FROM tasks t
LEFT JOIN LATERAL (
    SELECT min(e.ts) AS waited_at
    FROM task_events e
    WHERE e.task_id = t.id AND e.type = 'task.awaiting_approval' AND e.ts >= t.started_at
) w ON t.status IN ('awaiting_approval', 'succeeded', 'cancelled')
WHERE t.tenant_id = :tenant_id AND (t.started_at >= :since OR t.status = 'running')
GROUP BY 1

-- agent_stats --
-- Each agent's own share of the runs started since :since, from the steps its runs stored: the runs
-- it worked in, the steps it began, its tool calls, and its model calls with their tokens and
-- cost (priced as each call ended).
SELECT coalesce(t.crew, 'router') AS crew,
       e.data ->> 'agent' AS agent,
       count(DISTINCT e.task_id) AS runs_today,
       count(*) FILTER (
           WHERE e.type = 'agent.step' AND e.data ->> 'status' = 'started'
       ) AS steps,
       count(*) FILTER (WHERE e.type = 'tool.call') AS tool_calls,
       count(*) FILTER (WHERE e.type = 'llm.call') AS model_calls,
       coalesce(sum((e.data -> 'usage' ->> 'input_tokens')::bigint), 0) AS input_tokens,
       coalesce(sum((e.data -> 'usage' ->> 'output_tokens')::bigint), 0) AS output_tokens,
       coalesce(sum((e.data ->> 'cost_usd')::numeric), 0) AS cost_usd
FROM tasks t
JOIN task_events e ON e.task_id = t.id AND e.tenant_id = t.tenant_id
WHERE t.tenant_id = :tenant_id AND t.started_at >= :since
  AND e.type IN ('agent.step', 'tool.call', 'llm.call') AND e.data ? 'agent'
GROUP BY 1, 2

-- last_errors --
-- Each crew's latest failed task, however long ago.
SELECT DISTINCT ON (coalesce(crew, 'router'))
       coalesce(crew, 'router') AS crew, id AS task_id, error, finished_at
FROM tasks
WHERE tenant_id = :tenant_id AND status = 'failed'
ORDER BY coalesce(crew, 'router'), finished_at DESC NULLS LAST, id DESC

-- usage --
-- Usage from :first_day to :last_day (days, both included, in zone :tz) by :group_by: day, crew
-- or provider. The crew is the task's ("other" for usage recorded outside a task); BYOK run fees
-- are the platform's, under provider "opshub", apart from any model provider's calls.
WITH used AS (
    SELECT CASE :group_by::text
               WHEN 'day' THEN to_char(u.created_at AT TIME ZONE :tz, 'YYYY-MM-DD')
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
      AND u.created_at >= :first_day::date::timestamp AT TIME ZONE :tz
      AND u.created_at < (:last_day::date + 1)::timestamp AT TIME ZONE :tz
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
-- :after_created_at, :after_id: the cursor's task (created_at, id); the newest first after it.
SELECT id, crew, status, left(input, :preview_chars) AS input, error, cost_usd,
       created_at, started_at, finished_at
FROM tasks
WHERE tenant_id = :tenant_id
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) < (:after_created_at, :after_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- next_runs --
SELECT id AS schedule_id, crew, left(input, :preview_chars) AS input, cron, timezone, next_run_at
FROM schedules
WHERE tenant_id = :tenant_id AND enabled AND next_run_at IS NOT NULL
ORDER BY next_run_at, id
LIMIT :limit

-- daily_cost --
-- Model cost per day (in zone :tz) and crew from :first_day to :last_day, both included: the
-- tenant's own keys
-- apart from the platform's. The crew is the task's ("other" for usage outside a task).
SELECT to_char(u.created_at AT TIME ZONE :tz, 'YYYY-MM-DD') AS day,
       CASE WHEN t.id IS NULL THEN 'other' ELSE coalesce(t.crew, 'router') END AS crew,
       coalesce(sum(u.cost_usd) FILTER (WHERE u.billed_to = 'byok'), 0) AS byok_usd,
       coalesce(sum(u.cost_usd) FILTER (WHERE u.billed_to = 'platform'), 0) AS platform_usd
FROM usage_records u
LEFT JOIN tasks t ON t.tenant_id = u.tenant_id AND t.id = u.task_id
WHERE u.tenant_id = :tenant_id AND u.kind = 'model_call'
  AND u.created_at >= :first_day::date::timestamp AT TIME ZONE :tz
  AND u.created_at < (:last_day::date + 1)::timestamp AT TIME ZONE :tz
GROUP BY 1, 2
ORDER BY 1, 2

-- daily_runs --
-- Tasks submitted per day (in zone :tz) from :first_day to :last_day, by what became of them.
SELECT to_char(created_at AT TIME ZONE :tz, 'YYYY-MM-DD') AS day, status, count(*) AS runs
FROM tasks
WHERE tenant_id = :tenant_id
  AND created_at >= :first_day::date::timestamp AT TIME ZONE :tz
  AND created_at < (:last_day::date + 1)::timestamp AT TIME ZONE :tz
GROUP BY 1, 2
ORDER BY 1, 2

-- crew_durations --
-- Each crew's median work time over the runs started from :first_day to :last_day that have
-- ended their work
-- (as crew_stats counts it: a wait for approval is not work).
SELECT coalesce(t.crew, 'router') AS crew,
       count(*) AS runs,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM coalesce(w.waited_at, t.finished_at) - t.started_at)::float8
       ) AS p50_duration_seconds
FROM tasks t
LEFT JOIN LATERAL (
    SELECT min(e.ts) AS waited_at
    FROM task_events e
    WHERE e.task_id = t.id AND e.type = 'task.awaiting_approval' AND e.ts >= t.started_at
) w ON t.status IN ('awaiting_approval', 'succeeded', 'cancelled')
WHERE t.tenant_id = :tenant_id
  AND t.started_at >= :first_day::date::timestamp AT TIME ZONE :tz
  AND t.started_at < (:last_day::date + 1)::timestamp AT TIME ZONE :tz
  AND coalesce(w.waited_at, t.finished_at) IS NOT NULL
GROUP BY 1
ORDER BY 1
