-- list_crew_settings --
SELECT crew, provider, model FROM crew_settings WHERE tenant_id = $1

-- get_crew_setting --
SELECT provider, model FROM crew_settings WHERE tenant_id = $1 AND crew = $2

-- put_crew_setting --
INSERT INTO crew_settings (tenant_id, crew, provider, model) VALUES ($1, $2, $3, $4)
ON CONFLICT (tenant_id, crew) DO UPDATE SET provider = EXCLUDED.provider, model = EXCLUDED.model,
    updated_at = now()
