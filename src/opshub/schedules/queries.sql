-- insert_schedule --
INSERT INTO schedules (tenant_id, crew, input, inputs, cron, timezone, enabled, next_run_at)
VALUES (:tenant_id, :crew, :input, :inputs, :cron, :timezone, :enabled, :next_run_at)
RETURNING *

-- get_schedule --
SELECT * FROM schedules WHERE tenant_id = :tenant_id AND id = :schedule_id

-- get_schedule_for_update --
SELECT * FROM schedules WHERE tenant_id = :tenant_id AND id = :schedule_id FOR UPDATE

-- list_schedules --
SELECT * FROM schedules WHERE tenant_id = :tenant_id ORDER BY created_at, id

-- update_schedule --
UPDATE schedules
    SET crew = :crew, input = :input, inputs = :inputs, cron = :cron, timezone = :timezone,
        enabled = :enabled,
    next_run_at = :next_run_at, updated_at = now()
WHERE tenant_id = :tenant_id AND id = :schedule_id
RETURNING *

-- delete_schedule --
DELETE FROM schedules WHERE tenant_id = :tenant_id AND id = :schedule_id RETURNING id

-- due_schedules --
-- Each due schedule is locked by the scheduler that fires it; another skips it, and sees the
-- new next_run_at once this one commits: one firing per slot however many schedulers run.
SELECT * FROM schedules
WHERE enabled AND next_run_at <= now()
ORDER BY next_run_at
LIMIT :limit
FOR UPDATE SKIP LOCKED

-- mark_fired --
UPDATE schedules SET last_run_at = now(), next_run_at = :next_run_at WHERE id = :schedule_id

-- disable_schedule --
UPDATE schedules SET enabled = false, updated_at = now() WHERE id = :schedule_id
