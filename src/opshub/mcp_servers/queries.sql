-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- list_servers --
SELECT * FROM mcp_servers WHERE tenant_id = $1 ORDER BY name

-- get_server --
SELECT * FROM mcp_servers WHERE tenant_id = $1 AND name = $2

-- lock_server --
SELECT * FROM mcp_servers WHERE tenant_id = $1 AND name = $2 FOR UPDATE

-- upsert_server --
INSERT INTO mcp_servers AS s (tenant_id, name, url, tools, crews, side_effecting_tools,
                              secret_version, secret_ciphertext)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (tenant_id, name) DO UPDATE SET
    url = excluded.url, tools = excluded.tools, crews = excluded.crews,
    side_effecting_tools = excluded.side_effecting_tools,
    secret_version = excluded.secret_version, secret_ciphertext = excluded.secret_ciphertext,
    updated_at = now()
RETURNING *, (xmax = 0) AS created

-- delete_server --
DELETE FROM mcp_servers WHERE tenant_id = $1 AND name = $2 RETURNING secret_version

-- servers_for_crew --
SELECT * FROM mcp_servers WHERE tenant_id = $1 AND $2 = ANY (crews) ORDER BY name
