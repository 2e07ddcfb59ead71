-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- insert_task --
INSERT INTO tasks (tenant_id, crew, input, inputs, thread_id, schedule_id, retry_of, priority,
                   idempotency_key, webhook_url, trace_context)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING *

-- get_by_idempotency_key --
SELECT * FROM tasks WHERE tenant_id = $1 AND idempotency_key = $2

-- expire_idempotency_key --
-- A key older than the window is free again; the old task keeps everything else.
UPDATE tasks SET idempotency_key = NULL WHERE tenant_id = $1 AND id = $2

-- get_task --
SELECT * FROM tasks WHERE tenant_id = $1 AND id = $2

-- list_tasks --
SELECT * FROM tasks
WHERE tenant_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR crew = $3)
  AND ($4::uuid IS NULL OR thread_id = $4)
  AND ($5::uuid IS NULL OR schedule_id = $5)
  AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
  AND ($9::timestamptz IS NULL OR created_at >= $9)
  AND ($10::timestamptz IS NULL OR created_at < $10)
ORDER BY created_at DESC, id DESC
LIMIT $8

-- cancel_task --
-- A queued task, or one waiting on approvals, ends here; a running one is asked to stop (its
-- worker hears it at commit).
UPDATE tasks SET
    status = CASE WHEN status IN ('queued', 'awaiting_approval') THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
    cancel_requested = true
WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'running', 'awaiting_approval')
RETURNING *

-- has_webhook_secret --
SELECT EXISTS (
    SELECT 1 FROM webhook_secrets
    WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > now())
)

-- events_after --
SELECT seq, type, ts, data FROM task_events
WHERE tenant_id = $1 AND task_id = $2 AND seq > $3
ORDER BY seq
LIMIT $4

-- ended_by --
SELECT EXISTS (
    SELECT 1 FROM task_events
    WHERE tenant_id = $1 AND task_id = $2 AND seq <= $3 AND type = ANY($4::text[])
)

-- insert_event --
INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)
SELECT $1, $2, coalesce(max(seq), 0) + 1, $3, now(), $4 FROM task_events WHERE task_id = $2
RETURNING seq, type, ts, data

-- add_webhook_delivery --
INSERT INTO webhook_deliveries (tenant_id, task_id, url, body) VALUES ($1, $2, $3, $4)

-- last_event_seq --
SELECT coalesce(max(seq), 0) FROM task_events WHERE tenant_id = $1 AND task_id = $2
