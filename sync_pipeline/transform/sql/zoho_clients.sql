-- Zoho Invoice contacts → the shared _clients shape (see identity.sql) for one instance.
-- Placeholders: {clients} (raw table), {instance} {identifier} {identifier_field} (quoted literals).
-- The immutable account id lives in a contact custom field: the hash first, then the list.
CREATE OR REPLACE TEMP TABLE _clients AS
WITH c AS (
    SELECT record_key, source_id, payload, source_updated_at,
           coalesce(
               nullif(trim(payload -> 'custom_field_hash' ->> ({identifier_field} || '_unformatted')), ''),
               nullif(trim(payload -> 'custom_field_hash' ->> {identifier_field}), ''),
               nullif(trim(list_filter(
                   from_json(coalesce(payload -> 'custom_fields', '[]'), '[{{"api_name": "VARCHAR", "value": "VARCHAR"}}]'),
                   lambda f: f.api_name = {identifier_field})[1].value), '')
           ) AS field_value
    FROM {clients}
)
SELECT record_key, source_id, payload, source_updated_at,
       CASE {identifier} WHEN 'source_id' THEN {instance} || ':' || source_id ELSE field_value END AS derived_id,
       'no account identifier (custom field ' || {identifier_field} || ' is empty)' AS missing_identifier,
       nullif(trim(coalesce(payload ->> 'company_name', payload ->> 'contact_name')), '') AS name,
       nullif(trim(payload ->> 'tax_id'), '')                                 AS tax_id,
       nullif(trim(payload ->> 'email'), '')                                  AS email,
       nullif(trim(coalesce(payload ->> 'phone', payload ->> 'mobile')), '')  AS phone,
       nullif(trim(payload -> 'billing_address' ->> 'address'), '')           AS street,
       nullif(trim(payload -> 'billing_address' ->> 'city'), '')              AS city,
       nullif(trim(payload -> 'billing_address' ->> 'zip'), '')               AS post_code,
       nullif(trim(payload -> 'billing_address' ->> 'country'), '')           AS country,
       CASE WHEN nullif(trim(payload ->> 'company_name'), '') IS NULL THEN 'person' ELSE 'company' END AS kind,
       CAST(NULL AS VARCHAR)                                                  AS department
FROM c;
