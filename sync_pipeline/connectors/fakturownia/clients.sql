-- Fakturownia / InvoiceOcean clients → the shared _clients shape (see identity.sql) for one instance.
-- Placeholders: {clients} (raw table), {instance} {system_type} {identifier} (quoted literals).
CREATE OR REPLACE TEMP TABLE _clients AS
WITH fields AS (
    -- every field read in one parse of the payload (each `->>` would parse the whole document again)
    SELECT record_key, source_id, payload, source_updated_at,
           json_extract_string(payload, ['external_id', 'tax_no', 'name', 'email', 'phone', 'mobile_phone', 'street',
                                         'city', 'post_code', 'country', 'company', 'department_id']) AS f
    FROM {clients}
)
SELECT record_key, source_id, payload, source_updated_at,
       CASE {identifier}
           WHEN 'source_id'   THEN {instance} || ':' || source_id
           WHEN 'external_id' THEN nullif(trim(f[1]), '')
           WHEN 'tax_id'      THEN nullif(upper(regexp_replace(coalesce(f[2], ''), '[^0-9A-Za-z]', '', 'g')), '')
       END AS derived_id,
       nullif(trim(f[1]), '')                                            AS ref_key,  -- two-way sync: the key it came from
       'no account identifier (strategy ' || {identifier} || ')'         AS missing_identifier,
       nullif(trim(f[3]), '')                                            AS name,
       nullif(trim(f[2]), '')                                            AS tax_id,
       nullif(trim(f[4]), '')                                            AS email,
       nullif(trim(coalesce(f[5], f[6])), '')                            AS phone,
       nullif(trim(f[7]), '')                                            AS street,
       nullif(trim(f[8]), '')                                            AS city,
       nullif(trim(f[9]), '')                                            AS post_code,
       nullif(trim(f[10]), '')                                           AS country,  -- free text, kept as typed
       CASE WHEN lower(coalesce(f[11], 'true')) IN ('false', '0') THEN 'person' ELSE 'company' END AS kind,
       CAST(f[12] AS VARCHAR)                                            AS department
FROM fields;
