-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- expire_live_secrets --
UPDATE webhook_secrets SET expires_at = now() + $2 * interval '1 second'
WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > now() + $2 * interval '1 second')
RETURNING expires_at

-- add_secret --
INSERT INTO webhook_secrets (tenant_id, secret, standard) VALUES ($1, $2, true)

-- task_deliveries --
SELECT d.id, d.message_id, d.url, d.body ->> 'event' AS event, d.attempts AS tries,
       d.created_at, d.delivered_at, d.next_attempt_at,
       coalesce(jsonb_agg(jsonb_build_object('at', a.attempted_at, 'status_code', a.status_code,
                                             'error', a.error) ORDER BY a.id)
                FILTER (WHERE a.id IS NOT NULL), '[]') AS attempt_log
FROM webhook_deliveries d
LEFT JOIN webhook_attempts a ON a.delivery_id = d.id AND a.tenant_id = d.tenant_id
WHERE d.tenant_id = $1 AND d.task_id = $2 AND ($3::bigint IS NULL OR d.id = $3)
GROUP BY d.id
ORDER BY d.id

-- redeliver --
-- Again from the first try, under the same message id (receivers drop what they have seen).
UPDATE webhook_deliveries SET attempts = 0, delivered_at = NULL, next_attempt_at = now()
WHERE tenant_id = $1 AND task_id = $2 AND id = $3
RETURNING id
