-- The queue is the tasks table. Workers run these as the owner: claiming looks across tenants.

-- claim_tasks --
-- A claim is this one statement, one round trip: it holds its locks only while it runs.
-- Dead workers first: their tasks go back to the queue with a backoff, or fail once they have had
-- every attempt (or end cancelled if that was asked). Each is taken with its tenant's turn row,
-- so the counting triggers, at the commit right after the statement, only touch rows this claim
-- already holds (two claims never wait on each other, so they cannot deadlock).
-- Fairness: the tenants with queued work (queue_turns, counted by triggers) take turns: those
-- with the fewest running tasks first, then those never served (the first to wait first), then
-- the one served longest ago, as many tenants as there are slots, passing over those at their
-- limit or with nothing due yet. Among them a task's turn is its tenant's running count plus its
-- place in the tenant's own order, so every tenant's next task comes before any tenant's
-- second-next. The tenants served go to the back (served_at).
-- Concurrent claims: a tenant's turn row is locked by the claim serving it; others pass over it
-- (SKIP LOCKED) to the next tenants. A row changed by a claim that committed after this
-- statement's snapshot is re-read (READ COMMITTED re-checks a locked row's newest version), so
-- `running` and the limit are exact; `seen` reads the snapshot's row, and a tenant served since
-- (its served_at moved) is passed over instead of being served twice in one round.
WITH lost AS (
    SELECT t.id FROM tasks t JOIN queue_turns q ON q.tenant_id = t.tenant_id
    WHERE t.status = 'running' AND t.lease_expires_at < now()
    FOR UPDATE OF t, q SKIP LOCKED
),
expired AS (
    UPDATE tasks t SET
        status = CASE
            WHEN cancel_requested THEN 'cancelled'
            WHEN attempt < max_attempts THEN 'queued'
            ELSE 'failed' END,
        run_after = now() + least(:backoff_seconds * power(2, attempt - 1), 300) * interval '1 second',
        error = CASE
            WHEN cancel_requested OR attempt < max_attempts THEN error
            ELSE '{"code": "worker_lost", "message": "the worker running this task stopped responding on every attempt"}'::jsonb
            END,
        finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
        lease_owner = NULL,
        lease_expires_at = NULL
    FROM lost
    WHERE t.id = lost.id
    RETURNING t.*
),
eligible AS (
    SELECT q.tenant_id, q.running, q.served_at, q.waiting_since,
           coalesce(ten.max_running_tasks, :tenant_limit) - q.running AS free
    FROM queue_turns q
    JOIN tenants ten ON ten.id = q.tenant_id
    WHERE q.queued > 0
      AND coalesce(ten.max_running_tasks, :tenant_limit) > q.running
      AND q.served_at IS NOT DISTINCT FROM (SELECT seen.served_at FROM queue_turns seen
                                            WHERE seen.tenant_id = q.tenant_id)
      AND EXISTS (SELECT FROM tasks d
                  WHERE d.tenant_id = q.tenant_id AND d.status = 'queued'
                    AND d.run_after <= now())
    ORDER BY q.running, q.served_at NULLS FIRST, q.waiting_since, q.tenant_id
    LIMIT :limit
    FOR UPDATE OF q SKIP LOCKED
),
candidates AS (
    SELECT c.id, e.running + c.place AS turn, e.served_at, e.waiting_since, c.priority,
           c.created_at
    FROM eligible e
    CROSS JOIN LATERAL (
        SELECT t.id, t.priority, t.created_at,
               row_number() OVER (ORDER BY t.priority DESC, t.created_at) AS place
        FROM tasks t
        WHERE t.tenant_id = e.tenant_id AND t.status = 'queued' AND t.run_after <= now()
        ORDER BY t.priority DESC, t.created_at
        LIMIT least(e.free, :limit)
    ) c
),
picked AS (
    SELECT t.id FROM tasks t JOIN candidates c ON c.id = t.id
    WHERE t.status = 'queued'
    ORDER BY c.turn, c.served_at NULLS FIRST, c.waiting_since, c.priority DESC, c.created_at
    LIMIT :limit
    FOR UPDATE OF t SKIP LOCKED
),
claimed AS (
    UPDATE tasks t SET
        status = 'running',
        attempt = t.attempt + 1,
        lease_owner = :worker_id,
        lease_expires_at = now() + :lease_seconds * interval '1 second',
        started_at = coalesce(t.started_at, now())
    FROM picked
    WHERE t.id = picked.id
    RETURNING t.*
),
served AS (
    UPDATE queue_turns q SET served_at = clock_timestamp()
    WHERE q.tenant_id IN (SELECT tenant_id FROM claimed)
),
started AS (
    -- The domain event of each claimed task commits with its claim.
    INSERT INTO outbox (tenant_id, event_type, data)
    SELECT tenant_id, 'task.started',
           jsonb_build_object('task_id', id::text, 'status', status, 'crew', crew)
    FROM claimed
)
SELECT true AS claimed, c.*,
       (SELECT coalesce(max(e.seq), 0) FROM task_events e WHERE e.task_id = c.id) AS last_seq
FROM claimed c
UNION ALL
SELECT false, x.*, 0 FROM expired x

-- renew_leases --
-- A run's lease, or the lease on its memory write-back after it ended. Tasks missing from the
-- answer are no longer this worker's: it stops them without a word.
UPDATE tasks SET lease_expires_at = now() + :lease_seconds * interval '1 second'
WHERE id = ANY(:task_ids::uuid[]) AND lease_owner = :worker_id
  AND (status = 'running' OR memory_pending)
RETURNING id, cancel_requested AND status = 'running' AS cancel_requested

-- end_run --
-- A run's ending in one statement: the outcome, its usage (RunMeter.ledger), the domain event,
-- the thread's answer and the run's last event, with the NOTIFYs that carry that event live
-- (without Redis). One statement because every tenant's /v1/events waits behind a transaction
-- holding an id (opshub.outbox: tenant_events_after): the ending holds one for its own time,
-- not for a round trip per write on a worker whose loop crews' threads slow down. Run as its
-- own transaction by the owner (the tenant in its predicates), or in a tenant transaction for a
-- task with a webhook or open actions (RunOutcomes.complete).
-- No row when the task is no longer this worker's, or when a run that succeeded has actions
-- still open: RunOutcomes.complete then looks again under the task's lock. An open action only
-- gets decided and only the run's own tools propose one, so an action this snapshot sees as
-- decided stays so; one decided meanwhile at worst sends the task the long way.
-- With memories still to write (:remember), the worker keeps its lease on the task until they
-- are. The domain event's data is tasks.service.domain_event_data's.
WITH finished AS (
    UPDATE tasks SET
        status = :status, result = :result, error = :error,
        input_tokens = :input_tokens, output_tokens = :output_tokens,
        cost_usd = :cost_usd, billed_to = :billed_to,
        finished_at = now(), memory_pending = :remember,
        lease_owner = CASE WHEN :remember THEN lease_owner END,
        lease_expires_at = CASE WHEN :remember THEN lease_expires_at END
    WHERE tenant_id = :tenant_id AND id = :task_id AND lease_owner = :worker_id
      AND status = 'running'
      AND (:status <> 'succeeded' OR NOT EXISTS (
          SELECT 1 FROM actions
          WHERE tenant_id = :tenant_id AND task_id = :task_id
            AND status IN ('pending', 'approved')))
    RETURNING *
), usage AS (
    INSERT INTO usage_records
        (tenant_id, task_id, provider, model, input_tokens, output_tokens, cached_tokens,
            cost_usd, billed_to, kind)
    SELECT f.tenant_id, f.id, u.*
    FROM finished f, unnest(
        :usage_providers::text[], :usage_models::text[], :usage_input_tokens::integer[],
        :usage_output_tokens::integer[], :usage_cached_tokens::integer[],
        :usage_costs_usd::numeric[], :usage_billed_to::text[], :usage_kinds::text[]
    ) u
), domain_event AS (
    INSERT INTO outbox (tenant_id, event_type, data)
    SELECT tenant_id, 'task.' || status,
           jsonb_build_object('task_id', id::text, 'status', status, 'crew', crew)
    FROM finished
), answer AS (
    INSERT INTO thread_messages (tenant_id, thread_id, role, content, task_id)
    SELECT tenant_id, thread_id, 'agent', result #>> '{}', id FROM finished
    WHERE thread_id IS NOT NULL AND result IS NOT NULL
), last_event AS (
    INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)
    SELECT tenant_id, id, :event_seq, 'task.' || status, :event_ts, :event_data FROM finished
)
SELECT f.*, (SELECT count(pg_notify(:channel, notice)) FROM unnest(:notices::text[]) notice)
    AS notified
FROM finished f

-- memory_written --
-- Once: the mark is cleared in the transaction that stores the memories, by the lease's holder;
-- the extraction call's usage joins the run's, and its rows the ledger (RunMeter.ledger), in
-- the one statement: the write-back's last, since what it writes holds back /v1/events.
WITH written AS (
    UPDATE tasks SET
        memory_pending = false, lease_owner = NULL, lease_expires_at = NULL,
        input_tokens = input_tokens + :input_tokens,
        output_tokens = output_tokens + :output_tokens,
        cost_usd = cost_usd + :cost_usd
    WHERE tenant_id = :tenant_id AND id = :task_id AND lease_owner = :worker_id
      AND memory_pending
    RETURNING id, tenant_id
), usage AS (
    INSERT INTO usage_records
        (tenant_id, task_id, provider, model, input_tokens, output_tokens, cached_tokens,
            cost_usd, billed_to, kind)
    SELECT w.tenant_id, w.id, u.*
    FROM written w, unnest(
        :usage_providers::text[], :usage_models::text[], :usage_input_tokens::integer[],
        :usage_output_tokens::integer[], :usage_cached_tokens::integer[],
        :usage_costs_usd::numeric[], :usage_billed_to::text[], :usage_kinds::text[]
    ) u
)
SELECT id FROM written

-- claim_lost_write_backs --
-- The write-backs of workers that died after their runs ended.
UPDATE tasks t
    SET lease_owner = :worker_id, lease_expires_at = now() + :lease_seconds * interval '1 second'
FROM (
    SELECT id FROM tasks
    WHERE memory_pending AND lease_expires_at < now()
    ORDER BY lease_expires_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
) lost
WHERE t.id = lost.id
RETURNING t.*

-- retry_later --
UPDATE tasks SET
    status = 'queued', error = :error, lease_owner = NULL, lease_expires_at = NULL,
    run_after = now() + :delay_seconds * interval '1 second'
WHERE tenant_id = :tenant_id AND id = :task_id AND lease_owner = :worker_id AND status = 'running'
RETURNING *

-- release --
-- A worker shutting down hands back what it could not finish; that was not an attempt.
UPDATE tasks SET
    status = 'queued', attempt = attempt - 1, lease_owner = NULL, lease_expires_at = NULL,
    run_after = now()
WHERE id = ANY(:task_ids::uuid[]) AND lease_owner = :worker_id AND status = 'running'
RETURNING id

-- store_events --
-- A worker's batch of events in one statement, with the NOTIFYs that carry them to the hub's
-- other processes (without Redis; none with it): those are sent at its commit, so never before
-- the events are stored.
WITH stored AS (
    INSERT INTO task_events (tenant_id, task_id, seq, type, ts, data)
    SELECT * FROM unnest(
        :tenant_ids::uuid[], :task_ids::uuid[], :seqs::integer[], :types::text[],
        :stamps::timestamptz[], :data::jsonb[]
    )
    ON CONFLICT (task_id, seq) DO NOTHING
)
SELECT pg_notify(:channel, notice) FROM unnest(:notices::text[]) notice

-- thread_history --
SELECT role, content FROM (
    SELECT id, role, content FROM thread_messages
    WHERE tenant_id = :tenant_id AND thread_id = :thread_id AND task_id IS DISTINCT FROM :task_id
    ORDER BY id DESC LIMIT :limit
) recent ORDER BY id

-- due_webhooks --
-- Each delivery is locked by the sender that takes it; several senders share the work.
-- Signed with every live secret: whsec_ ones newest first, and the old one while it lives.
SELECT d.id, d.tenant_id, d.url, d.body, d.attempts, d.message_id,
       coalesce(array(
           SELECT s.secret FROM webhook_secrets s
           WHERE s.tenant_id = d.tenant_id AND s.standard
             AND (s.expires_at IS NULL OR s.expires_at > now())
           ORDER BY s.created_at DESC
       ), '{}') AS standard_secrets,
       (SELECT s.secret FROM webhook_secrets s
        WHERE s.tenant_id = d.tenant_id AND NOT s.standard
          AND (s.expires_at IS NULL OR s.expires_at > now())
        ORDER BY s.created_at DESC LIMIT 1) AS legacy_secret
FROM webhook_deliveries d
WHERE d.delivered_at IS NULL AND d.next_attempt_at <= now() AND d.attempts < :max_attempts
ORDER BY d.next_attempt_at
LIMIT :limit
FOR UPDATE OF d SKIP LOCKED

-- webhook_delivered --
UPDATE webhook_deliveries
    SET delivered_at = now(), attempts = attempts + 1, last_status = :status_code,
    last_error = NULL
WHERE id = :delivery_id

-- log_webhook_attempt --
INSERT INTO webhook_attempts (tenant_id, delivery_id, status_code, error)
VALUES (:tenant_id, :delivery_id, :status_code, :error)

-- webhook_failed --
UPDATE webhook_deliveries
    SET attempts = attempts + 1, last_status = :status_code, last_error = :error,
    next_attempt_at = now() + :delay_seconds * interval '1 second'
WHERE id = :delivery_id

-- set_task_crew --
-- The chat router picked the crew of a task submitted without one.
UPDATE tasks SET crew = :crew WHERE tenant_id = :tenant_id AND id = :task_id
