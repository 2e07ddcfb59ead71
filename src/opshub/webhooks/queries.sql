-- Every statement names the tenant besides RLS: the planner then sees it as an index condition.

-- expire_live_secrets --
UPDATE webhook_secrets SET expires_at = now() + :overlap_seconds * interval '1 second'
WHERE tenant_id = :tenant_id AND (expires_at IS NULL
    OR expires_at > now() + :overlap_seconds * interval '1 second')
RETURNING expires_at

-- add_secret --
INSERT INTO webhook_secrets (tenant_id, secret, standard) VALUES (:tenant_id, :secret, true)

-- task_deliveries --
SELECT d.id, d.message_id, d.url, d.body ->> 'event' AS event, d.attempts AS tries,
       d.created_at, d.delivered_at, d.next_attempt_at,
       coalesce(jsonb_agg(jsonb_build_object('at', a.attempted_at, 'status_code', a.status_code,
                                             'error', a.error) ORDER BY a.id)
                FILTER (WHERE a.id IS NOT NULL), '[]') AS attempt_log
FROM webhook_deliveries d
LEFT JOIN webhook_attempts a ON a.delivery_id = d.id AND a.tenant_id = d.tenant_id
WHERE d.tenant_id = :tenant_id AND d.task_id = :task_id AND (:delivery_id::bigint IS NULL
    OR d.id = :delivery_id)
GROUP BY d.id
ORDER BY d.id

-- redeliver --
-- Again from the first try, under the same message id (receivers drop what they have seen).
UPDATE webhook_deliveries SET attempts = 0, delivered_at = NULL, next_attempt_at = now()
WHERE tenant_id = :tenant_id AND task_id = :task_id AND id = :delivery_id
RETURNING id
