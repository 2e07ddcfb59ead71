-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- list_servers --
SELECT * FROM mcp_servers WHERE tenant_id = :tenant_id ORDER BY name

-- get_server --
SELECT * FROM mcp_servers WHERE tenant_id = :tenant_id AND name = :name

-- lock_server --
SELECT * FROM mcp_servers WHERE tenant_id = :tenant_id AND name = :name FOR UPDATE

-- upsert_server --
INSERT INTO mcp_servers AS s (tenant_id, name, url, tools, crews, side_effecting_tools,
                              secret_version, secret_ciphertext)
VALUES (:tenant_id, :name, :url, :tools, :crews, :side_effecting_tools, :secret_version,
    :secret_ciphertext)
ON CONFLICT (tenant_id, name) DO UPDATE SET
    url = excluded.url, tools = excluded.tools, crews = excluded.crews,
    side_effecting_tools = excluded.side_effecting_tools,
    secret_version = excluded.secret_version, secret_ciphertext = excluded.secret_ciphertext,
    updated_at = now()
RETURNING *, (xmax = 0) AS created

-- delete_server --
DELETE FROM mcp_servers WHERE tenant_id = :tenant_id AND name = :name RETURNING secret_version

-- servers_for_crew --
SELECT * FROM mcp_servers WHERE tenant_id = :tenant_id AND :crew = ANY (crews) ORDER BY name
