-- list_crew_settings --
SELECT crew, provider, model FROM crew_settings WHERE tenant_id = :tenant_id

-- get_crew_setting --
SELECT provider, model FROM crew_settings WHERE tenant_id = :tenant_id AND crew = :crew

-- put_crew_setting --
INSERT INTO crew_settings (tenant_id, crew, provider, model)
VALUES (:tenant_id, :crew, :provider, :model)
ON CONFLICT (tenant_id, crew) DO UPDATE SET provider = EXCLUDED.provider, model = EXCLUDED.model,
    updated_at = now()
