-- set_tenant --
-- Binds the rest of the transaction to one tenant; RLS policies read it.
SELECT set_config('app.tenant_id', :tenant_id, true)

-- set_tenant_custom_plans --
-- The same, and every statement of the transaction planned for its own values: see
-- opshub.db.engine.tenant_transaction.
SELECT set_config('app.tenant_id', :tenant_id, true),
       set_config('plan_cache_mode', 'force_custom_plan', true)

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
