-- lock_version --
-- The stored version, locked until the transaction ends so two writes serialise.
SELECT version FROM credentials WHERE tenant_id = :tenant_id AND provider = :provider FOR UPDATE

-- upsert_credential --
INSERT INTO credentials (tenant_id, provider, label, fingerprint, last4, backend, ciphertext,
    version)
VALUES (:tenant_id, :provider, :label, :fingerprint, :last4, :backend, :ciphertext, :version)
ON CONFLICT (tenant_id, provider) DO UPDATE SET
    label = EXCLUDED.label, fingerprint = EXCLUDED.fingerprint, last4 = EXCLUDED.last4,
    backend = EXCLUDED.backend, ciphertext = EXCLUDED.ciphertext, version = EXCLUDED.version,
    status = 'unchecked', status_detail = NULL, checked_at = NULL, updated_at = now()
RETURNING provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at

-- get_credential --
SELECT provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at
FROM credentials WHERE tenant_id = :tenant_id AND provider = :provider

-- list_credentials --
SELECT provider, label, fingerprint, last4, status, status_detail, checked_at, updated_at
FROM credentials WHERE tenant_id = :tenant_id

-- get_secret_row --
SELECT tenant_id, provider, version, ciphertext, backend
FROM credentials WHERE tenant_id = :tenant_id AND provider = :provider

-- get_plan --
SELECT plan FROM tenants WHERE id = :tenant_id

-- delete_credential --
DELETE FROM credentials WHERE tenant_id = :tenant_id AND provider = :provider RETURNING id

-- record_health --
-- Returns the status before the update, so a caller can tell a change of health.
UPDATE credentials c SET status = :status, status_detail = :status_detail, checked_at = :checked_at
FROM credentials old
WHERE old.id = c.id AND c.tenant_id = :tenant_id AND c.provider = :provider
RETURNING old.status

-- get_data_key --
SELECT wrapped_key, master_key_id FROM tenant_data_keys WHERE tenant_id = :tenant_id

-- insert_data_key --
-- Two first writes at once: one data key wins and both use it.
INSERT INTO tenant_data_keys (tenant_id, wrapped_key, master_key_id)
VALUES (:tenant_id, :wrapped_key, :master_key_id)
ON CONFLICT (tenant_id) DO NOTHING

-- all_data_keys --
SELECT tenant_id, wrapped_key, master_key_id FROM tenant_data_keys FOR UPDATE

-- rewrap_data_key --
UPDATE tenant_data_keys SET wrapped_key = :wrapped_key, master_key_id = :master_key_id
WHERE tenant_id = :tenant_id

-- all_credentials --
-- Every tenant's (the health sweep, as the owner).
SELECT tenant_id, provider FROM credentials
