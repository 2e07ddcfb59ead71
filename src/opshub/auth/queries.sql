-- Authentication happens before the tenant is known: these go through the SECURITY DEFINER
-- functions of the migrations, and one round trip both authenticates and binds the tenant for
-- the rest of the transaction.

-- api_key_principal --
SELECT p.key_id, p.tenant_id, p.role, set_config('app.tenant_id', p.tenant_id::text, true)
FROM opshub_api_key_principal(:key_hash) p

-- user_principal --
-- The role is read fresh, so a demotion takes effect before the token expires.
SELECT p.tenant_id, p.role, set_config('app.tenant_id', p.tenant_id::text, true)
FROM opshub_user_principal(:user_id) p

-- login_candidate --
SELECT user_id, tenant_id, role, password_hash FROM opshub_login_candidate(:email)

-- start_session --
INSERT INTO console_sessions (tenant_id, user_id, token_hash, csrf_token, expires_at)
VALUES (:tenant_id, :user_id, :token_hash, :csrf_token, :expires_at)

-- resolve_session --
-- With the tenant's name and plan, which every console page shows or needs: one round trip.
SELECT s.session_id, s.tenant_id, s.user_id, s.role, s.csrf_token, s.tenant_name, s.tenant_plan,
       set_config('app.tenant_id', s.tenant_id::text, true)
FROM opshub_console_session(:token_hash) s

-- end_session --
UPDATE console_sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = :session_id
