-- lock_version --
-- The stored version, locked until the transaction ends so two writes serialise.
SELECT version FROM credentials WHERE tenant_id = $1 AND provider = $2 FOR UPDATE

-- upsert_credential --
INSERT INTO credentials (tenant_id, provider, label, fingerprint, last4, backend, ciphertext, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant_id, provider) DO UPDATE SET
    label = EXCLUDED.label, fingerprint = EXCLUDED.fingerprint, last4 = EXCLUDED.last4,
    backend = EXCLUDED.backend, ciphertext = EXCLUDED.ciphertext, version = EXCLUDED.version,
    status = 'unchecked', status_detail = NULL, checked_at = NULL, updated_at = now()
RETURNING provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at

-- get_credential --
SELECT provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at
FROM credentials WHERE tenant_id = $1 AND provider = $2

-- list_credentials --
SELECT provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at
FROM credentials WHERE tenant_id = $1

-- get_secret_row --
SELECT tenant_id, provider, version, ciphertext, backend
FROM credentials WHERE tenant_id = $1 AND provider = $2

-- get_plan --
SELECT plan FROM tenants WHERE id = $1

-- delete_credential --
DELETE FROM credentials WHERE tenant_id = $1 AND provider = $2 RETURNING id

-- record_health --
-- Returns the status before the update, so a caller can tell a change of health.
UPDATE credentials c SET status = $3, status_detail = $4, checked_at = $5
FROM credentials old
WHERE old.id = c.id AND c.tenant_id = $1 AND c.provider = $2
RETURNING old.status

-- get_data_key --
SELECT wrapped_key, master_key_id FROM tenant_data_keys WHERE tenant_id = $1

-- insert_data_key --
-- Two first writes at once: one data key wins and both use it.
INSERT INTO tenant_data_keys (tenant_id, wrapped_key, master_key_id) VALUES ($1, $2, $3)
ON CONFLICT (tenant_id) DO NOTHING

-- all_data_keys --
SELECT tenant_id, wrapped_key, master_key_id FROM tenant_data_keys FOR UPDATE

-- rewrap_data_key --
UPDATE tenant_data_keys SET wrapped_key = $2, master_key_id = $3 WHERE tenant_id = $1
