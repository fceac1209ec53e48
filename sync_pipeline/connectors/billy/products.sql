-- Billy products as one side of the two-way product sync (load/entities.py). Placeholders: {raw}, {instance}.
-- The price is the one in the organisation's currency (DKK) when there is one, else the first [O].
CREATE OR REPLACE TEMP TABLE _rows AS
WITH p AS (
    SELECT record_key, source_id, payload, source_updated_at,
           CAST(coalesce(payload -> 'prices', '[]') AS JSON[]) AS prices
    FROM {raw}
    WHERE coalesce(payload ->> 'isArchived', 'false') <> 'true'
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,
       nullif(trim(payload ->> 'name'), '')                           AS name,
       nullif(trim(payload ->> 'productNo'), '')                      AS code,
       nullif(trim(payload ->> 'description'), '')                    AS description,
       TRY_CAST(price ->> 'unitPrice' AS DECIMAL(18, 2))              AS unit_price,
       nullif(price ->> 'currencyId', '')                             AS currency
FROM (SELECT *, coalesce(list_filter(prices, lambda x: (x ->> 'currencyId') = 'DKK')[1], prices[1]) AS price FROM p);
