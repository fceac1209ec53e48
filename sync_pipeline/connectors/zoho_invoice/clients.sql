-- Zoho Invoice contacts → the shared _clients shape (see identity.sql) for one instance.
-- Placeholders: {clients} (raw table), {instance} {identifier} {identifier_field} (quoted literals).
-- The immutable account id lives in a contact custom field: the hash first, then the list. The list is
-- read element by element as JSON, so an entry that is not an object (or a list that is not one) cannot
-- fail the whole rebuild.
CREATE OR REPLACE TEMP TABLE _clients AS
WITH c AS (
    SELECT record_key, source_id, payload, source_updated_at,
           coalesce(
               nullif(trim(payload -> 'custom_field_hash' ->> ({identifier_field} || '_unformatted')), ''),
               nullif(trim(payload -> 'custom_field_hash' ->> {identifier_field}), ''),
               nullif(trim(list_filter(json_extract(payload, '$.custom_fields[*]'),
                                       lambda f: f ->> 'api_name' = {identifier_field})[1] ->> 'value'), '')
           ) AS field_value,
           json_type(payload -> 'custom_fields') AS fields_type
    FROM {clients}
)
SELECT record_key, source_id, payload, source_updated_at,
       CASE {identifier} WHEN 'source_id' THEN {instance} || ':' || source_id ELSE field_value END AS derived_id,
       CASE WHEN fields_type NOT IN ('ARRAY', 'NULL')
            THEN 'no account identifier (custom field ' || {identifier_field} || ' is empty, and custom_fields is a JSON '
                 || json_kind(payload -> 'custom_fields') || ', not a list)'
            ELSE 'no account identifier (custom field ' || {identifier_field} || ' is empty)' END AS missing_identifier,
       CAST(NULL AS VARCHAR)                                                  AS ref_key,  -- two-way sync: none
       -- an individual has company_name "" and only a contact_name
       coalesce(nullif(trim(payload ->> 'company_name'), ''), nullif(trim(payload ->> 'contact_name'), '')) AS name,
       nullif(trim(payload ->> 'tax_id'), '')                                 AS tax_id,
       nullif(trim(payload ->> 'email'), '')                                  AS email,
       coalesce(nullif(trim(payload ->> 'phone'), ''), nullif(trim(payload ->> 'mobile'), '')) AS phone,
       nullif(trim(payload -> 'billing_address' ->> 'address'), '')           AS street,
       nullif(trim(payload -> 'billing_address' ->> 'city'), '')              AS city,
       nullif(trim(payload -> 'billing_address' ->> 'zip'), '')               AS post_code,
       nullif(trim(payload -> 'billing_address' ->> 'country'), '')           AS country,
       CASE WHEN nullif(trim(payload ->> 'company_name'), '') IS NULL THEN 'person' ELSE 'company' END AS kind,
       CAST(NULL AS VARCHAR)                                                  AS department
FROM c;
