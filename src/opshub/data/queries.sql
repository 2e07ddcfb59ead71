-- One file for the four kinds of tenant data: {table}, {columns} (what a create or update
-- writes), {document} (the read shape as JSON text, built by the database), {filters} and
-- {search} come from each resource's description (opshub.data.resources), filled in once.
-- Every statement names the tenant besides RLS: the planner sees it as an index condition.

-- list_rows --
-- Newest first, after the cursor if there is one; a filter or search left NULL matches all.
SELECT {document} AS doc, created_at, id FROM {table}
WHERE tenant_id = :tenant_id{filters}
  AND (:pattern::text IS NULL OR {search})
  AND (:cursor_created_at::timestamptz IS NULL
       OR (created_at, id) < (:cursor_created_at, :cursor_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit

-- get_row --
SELECT {document} FROM {table} WHERE tenant_id = :tenant_id AND id = :row_id

-- insert_row --
INSERT INTO {table} (tenant_id, {columns})
SELECT :tenant_id, {columns} FROM jsonb_populate_record(NULL::{table}, :row::jsonb)
RETURNING {document}

-- update_row --
-- The patch's keys replace the stored values (a null too); every other column keeps its own.
UPDATE {table} t SET ({columns}, updated_at) = (
    SELECT {columns}, now() FROM jsonb_populate_record(t, :patch::jsonb)
)
WHERE t.tenant_id = :tenant_id AND t.id = :row_id
RETURNING {document}

-- delete_row --
DELETE FROM {table} WHERE tenant_id = :tenant_id AND id = :row_id RETURNING id

-- import_rows --
-- One statement for the whole batch: the rows travel as one JSON array.
INSERT INTO {table} (tenant_id, {columns})
SELECT :tenant_id, {columns} FROM jsonb_populate_recordset(NULL::{table}, :rows::jsonb)
RETURNING id
