-- Tenants are platform administration (the owner connection); API keys run on either
-- connection, and on a tenant's RLS confines them to that tenant.

-- insert_tenant --
INSERT INTO tenants (name, plan) VALUES (:name, :plan)
RETURNING id, name, plan, created_at

-- insert_user --
INSERT INTO users (tenant_id, email, password_hash, role)
VALUES (:tenant_id, :email, :password_hash, :role)

-- list_tenants --
SELECT id, name, plan, created_at FROM tenants ORDER BY created_at

-- get_tenant --
SELECT id, name, plan, created_at FROM tenants WHERE id = :tenant_id

-- get_plan --
-- The request limiter's plan; on a tenant connection, only the tenant's own.
SELECT plan FROM tenants WHERE id = :tenant_id

-- insert_api_key --
INSERT INTO api_keys (tenant_id, name, prefix, key_hash, role)
VALUES (:tenant_id, :name, :prefix, :key_hash, :role)
RETURNING id, name, prefix, role, created_at, revoked_at

-- list_api_keys --
SELECT id, name, prefix, role, created_at, revoked_at FROM api_keys ORDER BY created_at

-- api_key_role --
SELECT role FROM api_keys WHERE id = :key_id

-- revoke_api_key --
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :key_id
RETURNING id, name, prefix, role, created_at, revoked_at
