-- Tenant statements name the tenant besides RLS (an index condition for the planner). A transition
-- names the status it leaves, so two deciders (or two executors) can't both make it.

-- insert_action --
INSERT INTO actions (tenant_id, task_id, tool, kind, payload, summary, estimated_impact,
                     idempotency_key)
VALUES (:tenant_id, :task_id, :tool, :kind, :payload, :summary, :estimated_impact, :idempotency_key)
ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
RETURNING *

-- get_by_idempotency_key --
SELECT * FROM actions WHERE tenant_id = :tenant_id AND idempotency_key = :idempotency_key

-- get_action --
SELECT * FROM actions WHERE tenant_id = :tenant_id AND id = :action_id

-- list_actions --
SELECT * FROM actions
WHERE tenant_id = :tenant_id
  AND (:status::text IS NULL OR status = :status)
  AND (:task_id::uuid IS NULL OR task_id = :task_id)
  AND (:after_created_at::timestamptz IS NULL
      OR (created_at, id) < (:after_created_at, :after_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- open_for_task --
SELECT * FROM actions
WHERE tenant_id = :tenant_id AND task_id = :task_id AND status IN ('pending', 'approved')
ORDER BY created_at, id

-- decide_action --
UPDATE actions
    SET status = :status, decided_by = :actor, decided_at = now(), decision_reason = :reason
WHERE tenant_id = :tenant_id AND id = :action_id AND status = 'pending'
RETURNING *

-- insert_audit --
INSERT INTO action_audit (tenant_id, action_id, actor, event, detail)
VALUES (:tenant_id, :action_id, :actor, :event, :detail)

-- task_exists --
SELECT true FROM tasks WHERE tenant_id = :tenant_id AND id = :task_id

-- lock_task --
-- Deciders and executors of one task's actions take turns here, so the last of them to finish
-- sees every other's outcome when it counts the open actions (READ COMMITTED: a statement after
-- the lock sees what committed before it).
SELECT status FROM tasks WHERE tenant_id = :tenant_id AND id = :task_id FOR UPDATE

-- task_has_open_actions --
SELECT EXISTS (
    SELECT 1 FROM actions
    WHERE tenant_id = :tenant_id AND task_id = :task_id AND status IN ('pending', 'approved')
)

-- settle_task --
UPDATE tasks SET status = 'succeeded', finished_at = now()
WHERE tenant_id = :tenant_id AND id = :task_id AND status = 'awaiting_approval'
RETURNING *

-- get_policy --
SELECT * FROM action_policies WHERE tenant_id = :tenant_id AND kind = :kind

-- list_policies --
SELECT * FROM action_policies WHERE tenant_id = :tenant_id ORDER BY kind

-- delete_other_policies --
DELETE FROM action_policies WHERE tenant_id = :tenant_id AND kind <> ALL(:kinds::text[])

-- upsert_policy --
-- An upsert rather than delete-and-insert: two concurrent replacements can't collide on the key.
INSERT INTO action_policies (tenant_id, kind, auto_approve, max_amount, currency)
VALUES (:tenant_id, :kind, :auto_approve, :max_amount, :currency)
ON CONFLICT (tenant_id, kind) DO UPDATE SET
    auto_approve = excluded.auto_approve, max_amount = excluded.max_amount,
    currency = excluded.currency, updated_at = now()

-- claim_actions --
-- Executors run this as the owner, across tenants. An approved action is free when nobody holds
-- it or its holder's lease ran out (the holder died mid-call: its executor is safe to re-run).
WITH picked AS (
    SELECT id FROM actions
    WHERE status = 'approved' AND next_attempt_at <= now()
      AND (lease_expires_at IS NULL OR lease_expires_at < now())
    ORDER BY next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE actions a SET
    attempts = a.attempts + 1,
    lease_owner = :lease_owner,
    lease_expires_at = now() + :lease_seconds * interval '1 second'
FROM picked
WHERE a.id = picked.id
RETURNING a.*

-- audit_started --
INSERT INTO action_audit (tenant_id, action_id, actor, event, detail)
SELECT tenant_id, id, :actor, 'execution_started', jsonb_build_object('attempt', attempts)
FROM actions WHERE id = ANY(:action_ids::uuid[])

-- renew_leases --
-- Actions missing from the answer are no longer this executor's.
UPDATE actions SET lease_expires_at = now() + :lease_seconds * interval '1 second'
WHERE id = ANY(:action_ids::uuid[]) AND lease_owner = :lease_owner AND status = 'approved'
RETURNING id

-- release_leases --
-- An executor shutting down hands back what it could not finish; that was not an attempt.
UPDATE actions SET lease_owner = NULL, lease_expires_at = NULL, attempts = attempts - 1
WHERE id = ANY(:action_ids::uuid[]) AND lease_owner = :lease_owner AND status = 'approved'

-- mark_executed --
UPDATE actions SET status = 'executed', outcome = :outcome, error = NULL, executed_at = now(),
    lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = :tenant_id AND id = :action_id AND lease_owner = :lease_owner
    AND status = 'approved'
RETURNING *

-- mark_failed --
UPDATE actions SET status = 'failed', error = :error, lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = :tenant_id AND id = :action_id AND lease_owner = :lease_owner
    AND status = 'approved'
RETURNING *

-- retry_later --
UPDATE actions SET error = :error, next_attempt_at = now() + :delay_seconds * interval '1 second',
    lease_owner = NULL, lease_expires_at = NULL
WHERE tenant_id = :tenant_id AND id = :action_id AND lease_owner = :lease_owner
    AND status = 'approved'
RETURNING *

-- list_audit --
-- GET /v1/audit: newest first, after the cursor (an audit row id), optionally of one action kind.
SELECT au.id, au.action_id, a.kind, a.task_id, au.at, au.actor, au.event, au.detail
FROM action_audit au JOIN actions a ON a.tenant_id = au.tenant_id AND a.id = au.action_id
WHERE au.tenant_id = :tenant_id
  AND (:before_id::bigint IS NULL OR au.id < :before_id)
  AND (:kind::text IS NULL OR a.kind = :kind)
ORDER BY au.id DESC
LIMIT :limit
