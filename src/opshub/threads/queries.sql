-- create_thread --
INSERT INTO threads (tenant_id, title) VALUES (:tenant_id, :title) RETURNING id, title, created_at

-- get_thread --
SELECT id, title, created_at FROM threads WHERE tenant_id = :tenant_id AND id = :thread_id

-- add_user_message --
INSERT INTO thread_messages (tenant_id, thread_id, role, content, task_id)
VALUES (:tenant_id, :thread_id, 'user', :content, :task_id)
RETURNING id, role, content, task_id, created_at

-- list_messages --
SELECT id, role, content, task_id, created_at FROM thread_messages
WHERE tenant_id = :tenant_id AND thread_id = :thread_id AND id > :after
ORDER BY id
LIMIT :limit

-- list_threads --
-- Newest first by creation: a stable keyset under the cursor; the last message rides along.
SELECT t.id, t.title, t.created_at, m.last_message_at FROM threads t
LEFT JOIN LATERAL (
    SELECT max(created_at) AS last_message_at FROM thread_messages
    WHERE tenant_id = t.tenant_id AND thread_id = t.id
) m ON true
WHERE t.tenant_id = :tenant_id
  AND (:after_created_at::timestamptz IS NULL
      OR (t.created_at, t.id) < (:after_created_at, :after_id::uuid))
ORDER BY t.created_at DESC, t.id DESC
LIMIT :limit
