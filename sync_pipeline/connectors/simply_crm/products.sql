-- Simply CRM Products as one side of the two-way product sync (load/entities.py). Placeholders: {raw}, {instance}.
-- vtiger answers decimals with 8 places ("1000.00000000") [V]: compared as amounts, not as text.
CREATE OR REPLACE TEMP TABLE _rows AS
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,
       nullif(trim(payload ->> 'productname'), '')                    AS name,
       nullif(trim(payload ->> 'productcode'), '')                    AS code,
       nullif(trim(payload ->> 'description'), '')                    AS description,
       TRY_CAST(nullif(payload ->> 'unit_price', '') AS DECIMAL(18, 2)) AS unit_price
FROM {raw}
WHERE coalesce(payload ->> 'discontinued', '1') <> '0';
