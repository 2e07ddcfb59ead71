-- create_thread --
INSERT INTO threads (tenant_id, title) VALUES ($1, $2) RETURNING id, title, created_at

-- get_thread --
SELECT id, title, created_at FROM threads WHERE tenant_id = $1 AND id = $2

-- add_user_message --
INSERT INTO thread_messages (tenant_id, thread_id, role, content, task_id)
VALUES ($1, $2, 'user', $3, $4)
RETURNING id, role, content, task_id, created_at

-- list_messages --
SELECT id, role, content, task_id, created_at FROM thread_messages
WHERE tenant_id = $1 AND thread_id = $2 AND id > $3
ORDER BY id
LIMIT $4

-- list_threads --
-- Newest first by creation: a stable keyset under the cursor; the last message rides along.
SELECT t.id, t.title, t.created_at, m.last_message_at FROM threads t
LEFT JOIN LATERAL (
    SELECT max(created_at) AS last_message_at FROM thread_messages
    WHERE tenant_id = t.tenant_id AND thread_id = t.id
) m ON true
WHERE t.tenant_id = $1
  AND ($2::timestamptz IS NULL OR (t.created_at, t.id) < ($2, $3::uuid))
ORDER BY t.created_at DESC, t.id DESC
LIMIT $4
