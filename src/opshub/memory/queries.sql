-- Every statement runs on a tenant-bound connection: RLS keeps it to the tenant's rows.
-- Vectors travel as text ('[0.1, …]') and are cast here: no codec depends on the extension.

-- lock_tenant_writes --
-- Dedupe, refresh and supersede decide on what is already stored: one writer per tenant at a time.
SELECT pg_advisory_xact_lock(hashtextextended('opshub.memory:' || :tenant_id::uuid::text, 0));

-- active_model --
-- The tenant's embedding model, and whether its memories of that model have their own index.
SELECT t.memory_embedding_model AS name,
       EXISTS (SELECT 1 FROM memory_indexes x
                WHERE x.tenant_id = t.id AND x.embedding_model = t.memory_embedding_model)
           AS indexed
  FROM tenants t WHERE t.id = :tenant_id;

-- find_same_content --
-- Said again: current again (an expired memory restated lives on), as important as either.
UPDATE memories
   SET updated_at = now(), importance = greatest(importance, :importance),
       expires_at = CASE WHEN :expires_at::timestamptz IS NULL THEN NULL
                         ELSE greatest(expires_at, :expires_at) END
 WHERE tenant_id = :tenant_id AND scope = :scope AND scope_key = :scope_key
     AND content_hash = :content_hash
   AND superseded_by IS NULL
RETURNING *;

-- refresh --
UPDATE memories
   SET updated_at = now(),
       importance = greatest(importance, :importance),
       metadata = metadata || :metadata,
       expires_at = CASE WHEN :expires_at::timestamptz IS NULL THEN NULL
                         ELSE greatest(expires_at, :expires_at) END
 WHERE tenant_id = :tenant_id AND id = :memory_id
RETURNING *;

-- same_subject --
SELECT id FROM memories
 WHERE tenant_id = :tenant_id AND scope = :scope AND scope_key = :scope_key AND subject = :subject
   AND kind IN ('fact', 'preference') AND superseded_by IS NULL;

-- insert --
INSERT INTO memories (tenant_id, scope, scope_key, kind, content, subject, embedding,
                      embedding_model, metadata, content_hash, importance, source_task_id,
                      expires_at)
VALUES (:tenant_id, :scope, :scope_key, :kind, :content, :subject, :embedding::text::vector,
    :embedding_model, :metadata, :content_hash, :importance, :source_task_id, :expires_at)
RETURNING *;

-- supersede --
UPDATE memories SET superseded_by = :superseded_by, updated_at = now()
 WHERE tenant_id = :tenant_id AND id = ANY(:memory_ids::uuid[]);

-- live_rows_up_to --
-- Bounded: only whether the tenant has reached the index threshold matters.
SELECT count(*) FROM (
    SELECT 1 FROM memories
     WHERE tenant_id = :tenant_id AND embedding_model = :embedding_model AND superseded_by IS NULL
     LIMIT :limit
) enough;

-- tenant_index --
SELECT index_name FROM memory_indexes WHERE tenant_id = :tenant_id
    AND embedding_model = :embedding_model;

-- nearest_exact --
-- "+ 0" keeps the planner off a partial HNSW index (it would prove the tenant's predicate from
-- a custom plan's value): this is the exact path, a sort of the tenant's filtered rows.
SELECT id, (embedding <=> :vector::text::vector) + 0 AS distance
  FROM memories
 WHERE tenant_id = :tenant_id AND embedding_model = :embedding_model AND superseded_by IS NULL
   AND (expires_at IS NULL OR expires_at > now())
   AND (:scopes::text[] IS NULL OR scope || ':' || scope_key = ANY(:scopes))
   AND (:kinds::text[] IS NULL OR kind = ANY(:kinds))
   AND metadata @> :metadata
 ORDER BY distance
 LIMIT :limit;

-- text_matches --
SELECT m.id, ts_rank_cd(m.search_text, q) AS rank
  FROM memories m, websearch_to_tsquery('english', :query) q
 WHERE m.tenant_id = :tenant_id AND m.superseded_by IS NULL AND m.search_text @@ q
   AND (m.expires_at IS NULL OR m.expires_at > now())
   AND (:scopes::text[] IS NULL OR m.scope || ':' || m.scope_key = ANY(:scopes))
   AND (:kinds::text[] IS NULL OR m.kind = ANY(:kinds))
   AND m.metadata @> :metadata
 ORDER BY rank DESC, m.id
 LIMIT :limit;

-- rows_by_id --
SELECT * FROM memories WHERE tenant_id = :tenant_id AND id = ANY(:memory_ids::uuid[]);

-- mark_recalled --
UPDATE memories SET last_recalled_at = now(), recall_count = recall_count + 1
 WHERE tenant_id = :tenant_id AND id = ANY(:memory_ids::uuid[]);

-- count_recalls --
-- Runs as the owner, for the recalls of every tenant's runs at once (opshub.memory.recalls):
-- each memory's recalls since the last of these, and the time of the latest.
UPDATE memories m
   SET recall_count = m.recall_count + r.times,
       last_recalled_at = greatest(m.last_recalled_at, r.last_at)
  FROM unnest(:tenant_ids::uuid[], :memory_ids::uuid[], :times::int[],
              :last_ats::timestamptz[]) AS r(tenant_id, id, times, last_at)
 WHERE m.tenant_id = r.tenant_id AND m.id = r.id;

-- recent --
SELECT * FROM memories
 WHERE tenant_id = :tenant_id AND superseded_by IS NULL
   AND (expires_at IS NULL OR expires_at > now())
   AND (:scopes::text[] IS NULL OR scope || ':' || scope_key = ANY(:scopes))
   AND (:kinds::text[] IS NULL OR kind = ANY(:kinds))
   AND metadata @> :metadata
 ORDER BY updated_at DESC, id
 LIMIT :limit;

-- get --
SELECT * FROM memories WHERE tenant_id = :tenant_id AND id = :memory_id;

-- delete_one --
DELETE FROM memories WHERE tenant_id = :tenant_id AND id = :memory_id RETURNING id;

-- forget_scope --
WITH gone AS (
    DELETE FROM memories WHERE tenant_id = :tenant_id AND scope = :scope
        AND scope_key = :scope_key RETURNING 1
)
SELECT count(*) FROM gone;

-- erase_tenant --
WITH gone AS (DELETE FROM memories WHERE tenant_id = :tenant_id RETURNING 1)
SELECT count(*) FROM gone;

-- set_active_model --
UPDATE tenants SET memory_embedding_model = :embedding_model WHERE id = :tenant_id;

-- set_extraction --
UPDATE tenants SET memory_extraction = :enabled WHERE id = :tenant_id;

-- rows_to_reembed --
SELECT id, content FROM memories
 WHERE tenant_id = :tenant_id AND embedding_model <> :embedding_model
 ORDER BY id
 LIMIT :limit;

-- reembed_one --
UPDATE memories SET embedding = :embedding::text::vector, embedding_model = :embedding_model
WHERE tenant_id = :tenant_id AND id = :memory_id;

-- settings --
SELECT memory_embedding_model AS embedding_model,
       coalesce(memory_extraction, :extraction_default) AS extraction
  FROM tenants WHERE id = :tenant_id;

-- create_stage --
-- A bulk import's rows arrive here by binary COPY (bulk.STAGE; vector(384): DIMENSIONS), since
-- PostgreSQL refuses COPY into a table under row-level security.
CREATE TEMPORARY TABLE memories_import (
    content text, scope text, scope_key text, kind text, embedding vector(384),
    metadata text, importance double precision, content_hash bytea
) ON COMMIT DROP

-- move_stage --
WITH moved AS (
    INSERT INTO memories (tenant_id, scope, scope_key, kind, content, embedding, embedding_model,
                          metadata, content_hash, importance)
    SELECT :tenant_id, scope, scope_key, kind, content, embedding, :embedding_model,
           metadata::jsonb, content_hash, importance
      FROM memories_import
        ON CONFLICT (tenant_id, scope, scope_key, content_hash) WHERE superseded_by IS NULL
        DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM moved

-- drop_stage --
-- ON COMMIT DROP acts when the transaction ends; a second import in it needs the name.
DROP TABLE memories_import
