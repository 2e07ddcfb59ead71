-- Every statement runs on a tenant-bound connection: RLS keeps it to the tenant's rows.
-- Vectors travel as text ('[0.1, …]') and are cast here: no codec depends on the extension.

-- lock_tenant_writes --
-- Dedupe, refresh and supersede decide on what is already stored: one writer per tenant at a time.
SELECT pg_advisory_xact_lock(hashtextextended('opshub.memory:' || $1::uuid::text, 0));

-- active_model --
-- The tenant's embedding model, and whether its memories of that model have their own index.
SELECT t.memory_embedding_model AS name,
       EXISTS (SELECT 1 FROM memory_indexes x
                WHERE x.tenant_id = t.id AND x.embedding_model = t.memory_embedding_model)
           AS indexed
  FROM tenants t WHERE t.id = $1;

-- find_same_content --
-- Said again: current again (an expired memory restated lives on), as important as either.
UPDATE memories
   SET updated_at = now(), importance = greatest(importance, $5),
       expires_at = CASE WHEN $6::timestamptz IS NULL THEN NULL
                         ELSE greatest(expires_at, $6) END
 WHERE tenant_id = $1 AND scope = $2 AND scope_key = $3 AND content_hash = $4
   AND superseded_by IS NULL
RETURNING *;

-- refresh --
UPDATE memories
   SET updated_at = now(),
       importance = greatest(importance, $3),
       metadata = metadata || $4,
       expires_at = CASE WHEN $5::timestamptz IS NULL THEN NULL
                         ELSE greatest(expires_at, $5) END
 WHERE tenant_id = $1 AND id = $2
RETURNING *;

-- same_subject --
SELECT id FROM memories
 WHERE tenant_id = $1 AND scope = $2 AND scope_key = $3 AND subject = $4
   AND kind IN ('fact', 'preference') AND superseded_by IS NULL;

-- insert --
INSERT INTO memories (tenant_id, scope, scope_key, kind, content, subject, embedding,
                      embedding_model, metadata, content_hash, importance, source_task_id,
                      expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7::text::vector, $8, $9, $10, $11, $12, $13)
RETURNING *;

-- supersede --
UPDATE memories SET superseded_by = $3, updated_at = now()
 WHERE tenant_id = $1 AND id = ANY($2::uuid[]);

-- live_rows_up_to --
-- Bounded: only whether the tenant has reached the index threshold matters.
SELECT count(*) FROM (
    SELECT 1 FROM memories
     WHERE tenant_id = $1 AND embedding_model = $2 AND superseded_by IS NULL
     LIMIT $3
) enough;

-- tenant_index --
SELECT index_name FROM memory_indexes WHERE tenant_id = $1 AND embedding_model = $2;

-- nearest_exact --
-- "+ 0" keeps the planner off a partial HNSW index (it would prove the tenant's predicate from
-- a custom plan's value): this is the exact path, a sort of the tenant's filtered rows.
SELECT id, (embedding <=> $3::text::vector) + 0 AS distance
  FROM memories
 WHERE tenant_id = $1 AND embedding_model = $2 AND superseded_by IS NULL
   AND (expires_at IS NULL OR expires_at > now())
   AND ($4::text[] IS NULL OR scope || ':' || scope_key = ANY($4))
   AND ($5::text[] IS NULL OR kind = ANY($5))
   AND metadata @> $6
 ORDER BY distance
 LIMIT $7;

-- text_matches --
SELECT m.id, ts_rank_cd(m.search_text, q) AS rank
  FROM memories m, websearch_to_tsquery('english', $2) q
 WHERE m.tenant_id = $1 AND m.superseded_by IS NULL AND m.search_text @@ q
   AND (m.expires_at IS NULL OR m.expires_at > now())
   AND ($3::text[] IS NULL OR m.scope || ':' || m.scope_key = ANY($3))
   AND ($4::text[] IS NULL OR m.kind = ANY($4))
   AND m.metadata @> $5
 ORDER BY rank DESC, m.id
 LIMIT $6;

-- rows_by_id --
SELECT * FROM memories WHERE tenant_id = $1 AND id = ANY($2::uuid[]);

-- mark_recalled --
UPDATE memories SET last_recalled_at = now(), recall_count = recall_count + 1
 WHERE tenant_id = $1 AND id = ANY($2::uuid[]);

-- recent --
SELECT * FROM memories
 WHERE tenant_id = $1 AND superseded_by IS NULL
   AND (expires_at IS NULL OR expires_at > now())
   AND ($2::text[] IS NULL OR scope || ':' || scope_key = ANY($2))
   AND ($3::text[] IS NULL OR kind = ANY($3))
   AND metadata @> $4
 ORDER BY updated_at DESC, id
 LIMIT $5;

-- get --
SELECT * FROM memories WHERE tenant_id = $1 AND id = $2;

-- delete_one --
DELETE FROM memories WHERE tenant_id = $1 AND id = $2 RETURNING id;

-- forget_scope --
WITH gone AS (
    DELETE FROM memories WHERE tenant_id = $1 AND scope = $2 AND scope_key = $3 RETURNING 1
)
SELECT count(*) FROM gone;

-- erase_tenant --
WITH gone AS (DELETE FROM memories WHERE tenant_id = $1 RETURNING 1)
SELECT count(*) FROM gone;

-- set_active_model --
UPDATE tenants SET memory_embedding_model = $2 WHERE id = $1;

-- set_extraction --
UPDATE tenants SET memory_extraction = $2 WHERE id = $1;

-- rows_to_reembed --
SELECT id, content FROM memories
 WHERE tenant_id = $1 AND embedding_model <> $2
 ORDER BY id
 LIMIT $3;

-- reembed_one --
UPDATE memories SET embedding = $3::text::vector, embedding_model = $4 WHERE tenant_id = $1 AND id = $2;

-- settings --
SELECT memory_embedding_model AS embedding_model,
       coalesce(memory_extraction, $2) AS extraction
  FROM tenants WHERE id = $1;

-- in_scope --
-- The live memories of one scope, newest first: what CrewAI's memory browses.
SELECT * FROM memories
 WHERE tenant_id = $1 AND scope = $2 AND scope_key = $3 AND superseded_by IS NULL
 ORDER BY created_at DESC, id
 LIMIT $4;

-- delete_many --
WITH gone AS (
    DELETE FROM memories WHERE tenant_id = $1 AND id = ANY($2::uuid[]) RETURNING 1
)
SELECT count(*) FROM gone;

-- rewrite --
UPDATE memories
   SET content = $3, content_hash = $4, importance = $5, metadata = $6, updated_at = now(),
       embedding = coalesce($7::text::vector, embedding)
 WHERE tenant_id = $1 AND id = $2;
