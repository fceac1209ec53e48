-- Shared by every source: bind each identifiable client to its account id the first time it is seen
-- (never rewritten), then key accounts by the binding. A later change of the identifier is drift: the
-- record stays on its bound account and is reported. Input: _clients from the vendor's clients SQL
-- (derived_id, missing_identifier and the canonical columns) and _problems (raw_problems.sql).
-- Placeholders: {instance} {system_type}.
CREATE OR REPLACE TEMP TABLE _clients_checked AS
SELECT c.*,
       concat_ws('; ',
           -- the hash only for the few records with a raw problem (hashing every payload cost seconds at 1M)
           CASE WHEN c.record_key IN (SELECT record_key FROM _problems) THEN
               (SELECT p.reason FROM _problems p WHERE p.record_key = c.record_key AND p.content = md5(c.payload::VARCHAR))
           END,
           text_problem('name', c.name)
       ) AS problem
FROM _clients c;

-- A record with a problem is not bound: its identifier cannot be trusted yet.
INSERT INTO identity.account_bindings
SELECT {instance}, c.source_id, c.derived_id, now()
FROM _clients_checked c
WHERE c.source_id IS NOT NULL AND c.derived_id IS NOT NULL AND c.problem = ''
  AND NOT EXISTS (SELECT 1 FROM identity.account_bindings b
                  WHERE b.source_instance = {instance} AND b.source_id = c.source_id);

CREATE OR REPLACE TEMP TABLE _accounts_mapped AS
SELECT c.record_key, c.source_id, c.payload,
       coalesce(b.account_id, c.derived_id) AS account_id,
       {instance}                           AS source_instance,
       {system_type}                        AS source_system,
       c.name, c.tax_id, c.email, c.phone, c.street, c.city, c.post_code, c.country, c.kind, c.department,
       c.source_updated_at,
       concat_ws('; ',
           nullif(c.problem, ''),
           CASE WHEN c.source_id IS NULL THEN 'no id' END,
           CASE WHEN c.source_id IS NOT NULL AND b.account_id IS NULL AND c.derived_id IS NULL
                THEN c.missing_identifier END
       ) AS reason,
       CASE WHEN b.account_id IS NOT NULL AND c.derived_id IS DISTINCT FROM b.account_id
            THEN 'identifier drift: bound to ' || b.account_id || ', source now gives ' || coalesce(c.derived_id, 'nothing')
       END AS drift
FROM _clients_checked c
LEFT JOIN identity.account_bindings b ON b.source_instance = {instance} AND b.source_id = c.source_id;
