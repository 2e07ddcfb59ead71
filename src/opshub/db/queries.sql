-- set_tenant --
-- Binds the rest of the transaction to one tenant; RLS policies read it.
SELECT set_config('app.tenant_id', :tenant_id, true)

-- try_advisory_lock --
SELECT pg_try_advisory_lock(:key)

-- advisory_unlock --
SELECT pg_advisory_unlock(:key)

-- advisory_xact_lock --
SELECT pg_advisory_xact_lock(:key)

-- ping --
-- /readyz: the database answers.
SELECT 1

-- notify_many --
-- A batch of messages to the other processes in one round trip, each behind its sender's id.
SELECT pg_notify(:channel, :sender || p) FROM unnest(:payloads::text[]) p
