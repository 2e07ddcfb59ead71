-- Per-tenant partial HNSW indexes (opshub.memory.indexes). They run as the owner. {name} is an
-- index's name, {partition} the tenant's partition of memories and {predicate} the index's WHERE
-- clause, filled in from checked values and the catalog: a partial index applies only to a query
-- that repeats its predicate with literals (a generic plan cannot prove a parameter matches it),
-- and DDL takes no parameters. Queries name memories: the tenant's literal prunes the plan to
-- its partition, whose indexes it then picks from.

-- nearest_indexed --
-- Top {ef_search} candidates from the tenant's index, then the caller's filters.
SELECT id, distance FROM (
    SELECT id, scope, scope_key, kind, metadata, expires_at,
           embedding <=> :vector::text::vector AS distance
      FROM memories
     WHERE {predicate}
     ORDER BY embedding <=> :vector::text::vector
     LIMIT {ef_search}
) candidates
 WHERE (expires_at IS NULL OR expires_at > now())
   AND (:scopes::text[] IS NULL OR scope || ':' || scope_key = ANY(:scopes))
   AND (:kinds::text[] IS NULL OR kind = ANY(:kinds))
   AND metadata @> :metadata
 ORDER BY distance
 LIMIT :limit

-- set_ef_search --
SELECT set_config('hnsw.ef_search', :ef_search, true)

-- try_lock_index --
-- Held by whoever builds or drops the index, for the session.
SELECT pg_try_advisory_lock(hashtextextended(:name, 0))

-- unlock_index --
SELECT pg_advisory_unlock(hashtextextended(:name, 0))

-- tenant_partition --
-- The partition of memories that holds the tenant's rows, schema-qualified, and its schema
-- (where the tenant's index lives), quoted.
SELECT quote_ident(n.nspname) AS schema, format('%I.%I', n.nspname, c.relname) AS partition
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace,
       regexp_match(pg_get_expr(c.relpartbound, c.oid), 'modulus (\d+), remainder (\d+)') b
 WHERE i.inhparent = 'memories'::regclass
   AND satisfies_hash_partition('memories'::regclass, b[1]::int, b[2]::int, :tenant_id::uuid)

-- index_valid --
SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE c.relname = :name

-- drop_index --
-- {name} qualified by its partition's schema: an index lives in its table's.
DROP INDEX CONCURRENTLY IF EXISTS {name}

-- create_index --
CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {partition}
USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 200)
WHERE {predicate}

-- count_indexed --
SELECT count(*) FROM memories WHERE {predicate}

-- register_index --
INSERT INTO memory_indexes (tenant_id, embedding_model, index_name, rows_at_build)
VALUES (:tenant_id, :embedding_model, :index_name, :rows_at_build)
ON CONFLICT DO NOTHING

-- find_due --
-- Tenants whose active model has no index yet, counted only up to the threshold through
-- ix_memories_live: the sweep reads at most threshold rows a tenant, never the whole table.
SELECT t.id AS tenant_id, t.memory_embedding_model AS embedding_model
  FROM tenants t
 WHERE NOT EXISTS (SELECT 1 FROM memory_indexes x
                    WHERE x.tenant_id = t.id AND x.embedding_model = t.memory_embedding_model)
   AND (SELECT count(*) FROM (
            SELECT 1 FROM memories m
             WHERE m.tenant_id = t.id AND m.embedding_model = t.memory_embedding_model
               AND m.superseded_by IS NULL
             LIMIT :threshold) enough) >= :threshold

-- find_orphans --
SELECT c.relname, format('%I.%I', n.nspname, c.relname) AS qualified
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'i' AND c.relname LIKE 'ix\_memories\_hnsw\_%'
   AND NOT EXISTS (SELECT 1 FROM memory_indexes x WHERE x.index_name = c.relname)
