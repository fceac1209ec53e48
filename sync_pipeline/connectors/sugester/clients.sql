-- Sugester clients → the shared _clients shape (see identity.sql), read as one side of the two-way client
-- sync (load/twoway.py). Placeholders: {clients} (raw table), {instance} (quoted literal).
-- derived_id: the record's own key (instance:id); ref_key: the key of the record it came from, as we wrote
-- it into external_ids (or a user put it into external_id).
CREATE OR REPLACE TEMP TABLE _clients AS
WITH fields AS (
    SELECT record_key, source_id, payload, source_updated_at,
           json_extract_string(payload, ['name', 'tax_no', 'email', 'phone', 'mobile_phone', 'street', 'street_no',
                                         'city', 'post_code', 'country', 'company', 'department_id', 'external_id',
                                         '$.external_ids.sync_pipeline']) AS f
    FROM {clients}
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                    AS derived_id,
       coalesce(nullif(trim(f[14]), ''), nullif(trim(f[13]), ''))        AS ref_key,
       'no id'                                                           AS missing_identifier,
       nullif(trim(f[1]), '')                                            AS name,
       nullif(trim(f[2]), '')                                            AS tax_id,
       nullif(trim(f[3]), '')                                            AS email,
       nullif(trim(coalesce(f[4], f[5])), '')                            AS phone,
       nullif(trim(concat_ws(' ', nullif(trim(f[6]), ''), nullif(trim(f[7]), ''))), '') AS street,
       nullif(trim(f[8]), '')                                            AS city,
       nullif(trim(f[9]), '')                                            AS post_code,
       nullif(trim(f[10]), '')                                           AS country,
       CASE WHEN lower(coalesce(f[11], 'true')) IN ('false', '0') THEN 'person' ELSE 'company' END AS kind,
       CAST(f[12] AS VARCHAR)                                            AS department
FROM fields;
