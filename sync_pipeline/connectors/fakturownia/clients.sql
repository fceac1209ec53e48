-- Fakturownia / InvoiceOcean clients → the shared _clients shape (see identity.sql) for one instance.
-- Placeholders: {clients} (raw table), {instance} {system_type} {identifier} (quoted literals).
CREATE OR REPLACE TEMP TABLE _clients AS
SELECT record_key, source_id, payload, source_updated_at,
       CASE {identifier}
           WHEN 'source_id'   THEN {instance} || ':' || source_id
           WHEN 'external_id' THEN nullif(trim(payload ->> 'external_id'), '')
           WHEN 'tax_id'      THEN nullif(upper(regexp_replace(coalesce(payload ->> 'tax_no', ''), '[^0-9A-Za-z]', '', 'g')), '')
       END AS derived_id,
       'no account identifier (strategy ' || {identifier} || ')'         AS missing_identifier,
       nullif(trim(payload ->> 'name'), '')                              AS name,
       nullif(trim(payload ->> 'tax_no'), '')                            AS tax_id,
       nullif(trim(payload ->> 'email'), '')                             AS email,
       nullif(trim(coalesce(payload ->> 'phone', payload ->> 'mobile_phone')), '') AS phone,
       nullif(trim(payload ->> 'street'), '')                            AS street,
       nullif(trim(payload ->> 'city'), '')                              AS city,
       nullif(trim(payload ->> 'post_code'), '')                         AS post_code,
       nullif(trim(payload ->> 'country'), '')                           AS country,  -- free text, kept as typed
       CASE WHEN lower(coalesce(payload ->> 'company', 'true')) IN ('false', '0') THEN 'person' ELSE 'company' END AS kind,
       CAST(payload ->> 'department_id' AS VARCHAR)                      AS department
FROM {clients};
