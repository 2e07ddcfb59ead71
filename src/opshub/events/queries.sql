-- insert_event --
INSERT INTO outbox (tenant_id, event_type, data) VALUES ($1, $2, $3)

-- undelivered --
-- Oldest first, so other services see a tenant's events in the order they happened.
SELECT id, tenant_id, event_type, data, created_at FROM outbox
WHERE delivered_at IS NULL ORDER BY id LIMIT $1

-- mark_delivered --
UPDATE outbox SET delivered_at = now() WHERE id = ANY($1::bigint[])
