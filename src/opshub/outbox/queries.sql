-- insert_event --
INSERT INTO outbox (tenant_id, event_type, data) VALUES (:tenant_id, :event_type, :data)

-- undelivered --
-- Oldest first, so other services see a tenant's events in the order they happened.
SELECT id, tenant_id, event_type, data, created_at FROM outbox
WHERE delivered_at IS NULL ORDER BY id LIMIT :limit

-- mark_delivered --
UPDATE outbox SET delivered_at = now() WHERE id = ANY(:event_ids::bigint[])

-- tenant_events_after --
-- GET /v1/events: the caller's domain events after a cursor (RLS binds the tenant), in the order
-- they became final. An id is taken at insert, not at commit, so one transaction can commit a
-- lower id after another's higher one: read in id order, a cursor would pass it by for good.
-- So: only rows no open transaction can precede (txid below the snapshot's xmin; whatever
-- commits later has a txid at or above it), in (txid, id) order. The cursor is an event's id and
-- what follows it is what sorts after its (txid, id); an id that is no event of the tenant's (0,
-- a deleted row) stands at the txid of the nearest event below it.
-- held_back, from the same snapshot: some committed row waits behind an older open transaction,
-- so the reader must look again soon (its commit's wake-up has come and gone). One row with no
-- event when there are none.
SELECT h.held_back, e.id, e.event_type, e.data, e.created_at
FROM (
  SELECT EXISTS (
    SELECT 1 FROM outbox
    WHERE tenant_id = :tenant_id
      AND coalesce(txid, '0'::xid8) >= pg_snapshot_xmin(pg_current_snapshot())
  ) AS held_back
) h
LEFT JOIN LATERAL (
  SELECT id, event_type, data, created_at, coalesce(txid, '0'::xid8) AS final_txid FROM outbox
  WHERE tenant_id = :tenant_id
    AND coalesce(txid, '0'::xid8) < pg_snapshot_xmin(pg_current_snapshot())
    AND (coalesce(txid, '0'::xid8), id) > (
      coalesce(
        (SELECT coalesce(txid, '0'::xid8) FROM outbox
         WHERE tenant_id = :tenant_id AND id <= :after ORDER BY id DESC LIMIT 1),
        '0'::xid8),
      :after)
  ORDER BY coalesce(txid, '0'::xid8), id LIMIT :limit
) e ON true
ORDER BY e.final_txid, e.id

-- latest_tenant_event --
-- The last event in that order: a stream that starts here gets what becomes final after it.
SELECT coalesce(
  (SELECT id FROM outbox
   WHERE tenant_id = :tenant_id
     AND coalesce(txid, '0'::xid8) < pg_snapshot_xmin(pg_current_snapshot())
   ORDER BY coalesce(txid, '0'::xid8) DESC, id DESC LIMIT 1),
  0)
