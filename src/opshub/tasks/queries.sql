-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- insert_task --
-- The task and its task.queued event (service.domain_event_data's, with the request's start as a
-- list shows it) in one statement: the submitting transaction holds an id from here to its
-- commit, and every tenant's /v1/events waits behind it. No row when the key is taken.
WITH inserted AS (
    INSERT INTO tasks (tenant_id, crew, input, inputs, thread_id, schedule_id, retry_of,
                       priority, idempotency_key, webhook_url, trace_context)
    VALUES (:tenant_id, :crew, :input, :inputs, :thread_id, :schedule_id, :retry_of, :priority,
            :idempotency_key, :webhook_url, :trace_context)
    ON CONFLICT (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING *
), queued AS (
    INSERT INTO outbox (tenant_id, event_type, data)
    SELECT tenant_id, 'task.queued',
           jsonb_build_object('task_id', id::text, 'status', status, 'crew', crew,
                              'input', left(input, :preview_chars))
    FROM inserted
)
SELECT * FROM inserted

-- get_by_idempotency_key --
SELECT * FROM tasks WHERE tenant_id = :tenant_id AND idempotency_key = :idempotency_key

-- expire_idempotency_key --
-- A key older than the window is free again; the old task keeps everything else.
UPDATE tasks SET idempotency_key = NULL WHERE tenant_id = :tenant_id AND id = :task_id

-- get_task --
SELECT * FROM tasks WHERE tenant_id = :tenant_id AND id = :task_id

-- list_tasks --
SELECT * FROM tasks
WHERE tenant_id = :tenant_id
  AND (:status::text IS NULL OR status = :status)
  AND (:crew::text IS NULL OR crew = :crew)
  AND (:thread_id::uuid IS NULL OR thread_id = :thread_id)
  AND (:schedule_id::uuid IS NULL OR schedule_id = :schedule_id)
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) < (:after_created_at, :after_id::uuid))
  AND (:created_from::timestamptz IS NULL OR created_at >= :created_from)
  AND (:created_before::timestamptz IS NULL OR created_at < :created_before)
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- cancel_task --
-- A queued task, or one waiting on approvals, ends here; a running one is asked to stop (its
-- worker hears it at commit).
UPDATE tasks SET
    status = CASE WHEN status IN ('queued', 'awaiting_approval') THEN 'cancelled' ELSE status END,
    finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
    cancel_requested = true
WHERE tenant_id = :tenant_id AND id = :task_id
    AND status IN ('queued', 'running', 'awaiting_approval')
RETURNING *

-- has_webhook_secret --
SELECT EXISTS (
    SELECT 1 FROM webhook_secrets
    WHERE tenant_id = :tenant_id AND (expires_at IS NULL OR expires_at > now())
)

-- events_after --
SELECT seq, type, ts, data FROM task_events
WHERE tenant_id = :tenant_id AND task_id = :task_id AND seq > :after
ORDER BY seq
LIMIT :limit

-- ended_by --
SELECT EXISTS (
    SELECT 1 FROM task_events
    WHERE tenant_id = :tenant_id AND task_id = :task_id AND seq <= :seq
      AND type = ANY(:types::text[])
)

-- insert_event --
INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)
SELECT :tenant_id, :task_id, coalesce(max(seq), 0) + 1, :type, now(), :data
FROM task_events WHERE task_id = :task_id
RETURNING seq, type, ts, data

-- add_webhook_delivery --
INSERT INTO webhook_deliveries (tenant_id, task_id, url, body)
VALUES (:tenant_id, :task_id, :url, :body)

-- last_event_seq --
SELECT coalesce(max(seq), 0) FROM task_events WHERE tenant_id = :tenant_id AND task_id = :task_id

-- thread_exists --
SELECT EXISTS (SELECT FROM threads WHERE tenant_id = :tenant_id AND id = :thread_id)
