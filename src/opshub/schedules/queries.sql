-- insert_schedule --
INSERT INTO schedules (tenant_id, crew, input, inputs, cron, timezone, enabled, next_run_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *

-- get_schedule --
SELECT * FROM schedules WHERE tenant_id = $1 AND id = $2

-- get_schedule_for_update --
SELECT * FROM schedules WHERE tenant_id = $1 AND id = $2 FOR UPDATE

-- list_schedules --
SELECT * FROM schedules WHERE tenant_id = $1 ORDER BY created_at, id

-- update_schedule --
UPDATE schedules SET crew = $3, input = $4, inputs = $5, cron = $6, timezone = $7, enabled = $8,
    next_run_at = $9, updated_at = now()
WHERE tenant_id = $1 AND id = $2
RETURNING *

-- delete_schedule --
DELETE FROM schedules WHERE tenant_id = $1 AND id = $2 RETURNING id

-- due_schedules --
-- Each due schedule is locked by the scheduler that fires it; another skips it, and sees the
-- new next_run_at once this one commits: one firing per slot however many schedulers run.
SELECT * FROM schedules
WHERE enabled AND next_run_at <= now()
ORDER BY next_run_at
LIMIT $1
FOR UPDATE SKIP LOCKED

-- mark_fired --
UPDATE schedules SET last_run_at = now(), next_run_at = $2 WHERE id = $1

-- disable_schedule --
UPDATE schedules SET enabled = false, updated_at = now() WHERE id = $1
