-- Fakturownia/InvoiceOcean products (VENDOR_APIS §1.7) as canonical product rows, read for targets that take
-- products from any system (Invoice2go). Placeholders: {raw} (raw table), {instance}. Disabled products are left out;
-- the price is the net unit price (what an invoice line carries).
CREATE OR REPLACE TEMP TABLE _rows AS
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,
       nullif(trim(payload ->> 'name'), '')                           AS name,
       nullif(trim(payload ->> 'code'), '')                           AS code,
       nullif(trim(payload ->> 'description'), '')                    AS description,
       TRY_CAST(nullif(payload ->> 'price_net', '') AS DECIMAL(18, 2)) AS unit_price,
       nullif(upper(trim(payload ->> 'currency')), '')                AS currency
FROM {raw}
WHERE coalesce(payload ->> 'disabled', 'false') NOT IN ('true', '1');
