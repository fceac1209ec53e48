-- Simply CRM Accounts ("Organizations" in its UI) as one side of the two-way organisation sync (load/entities.py).
-- Placeholders: {raw} (raw table), {instance}. Every value arrives as a string, "" for none [V]; a country typed as a
-- name becomes its ISO code (meta.countries), as Billy keeps it.
CREATE OR REPLACE TEMP TABLE _rows AS
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,  -- no external-id field by default
       nullif(trim(payload ->> 'accountname'), '')                    AS name,
       nullif(trim(payload ->> 'email1'), '')                         AS email,
       nullif(trim(payload ->> 'phone'), '')                          AS phone,
       nullif(trim(payload ->> 'bill_street'), '')                    AS street,
       nullif(trim(payload ->> 'bill_city'), '')                      AS city,
       nullif(trim(payload ->> 'bill_code'), '')                      AS post_code,
       coalesce((SELECT code FROM meta.countries WHERE alias = lower(trim(payload ->> 'bill_country'))),
                nullif(trim(payload ->> 'bill_country'), ''))         AS country
FROM {raw};
