-- insert_event --
INSERT INTO outbox (tenant_id, event_type, data) VALUES (:tenant_id, :event_type, :data)

-- undelivered --
-- Oldest first, so other services see a tenant's events in the order they happened.
SELECT id, tenant_id, event_type, data, created_at FROM outbox
WHERE delivered_at IS NULL ORDER BY id LIMIT :limit

-- mark_delivered --
UPDATE outbox SET delivered_at = now() WHERE id = ANY(:event_ids::bigint[])

-- tenant_events_after --
-- GET /v1/events: the caller's domain events after a cursor, oldest first (RLS binds the tenant).
-- Only rows no open transaction can precede: past them, a lower id could still commit.
SELECT id, event_type, data, created_at FROM outbox
WHERE tenant_id = :tenant_id AND id > :after
  AND (txid IS NULL OR txid < pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY id LIMIT :limit

-- latest_tenant_event --
SELECT coalesce(max(id), 0) FROM outbox
WHERE tenant_id = :tenant_id AND (txid IS NULL OR txid < pg_snapshot_xmin(pg_current_snapshot()))
