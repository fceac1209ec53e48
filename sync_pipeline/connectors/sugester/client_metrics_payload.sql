-- The connection's metric fields (Sugester client custom fields, `metric_fields` in sync.yaml) for each staged
-- account of its source, written onto the Sugester client the account's client is linked to (sync.links).
-- Placeholders filled by load/metric_fields.py; no rows when the connection maps no metric field.
SELECT a.account_id AS our_key,
       CAST(json_object('client_id', TRY_CAST(l.b_id AS BIGINT),
                        'fields', json_object({metric_fields})) AS VARCHAR) AS payload,
       CASE WHEN l.b_id IS NULL THEN 'client ' || a.source_id || ' is not linked to a Sugester client yet' END AS blocked
FROM staging.accounts a
{metric_joins}
LEFT JOIN sync.links l
       ON l.connection = $connection AND l.entity = 'clients' AND l.a_id = a.source_id AND l.b_id IS NOT NULL
WHERE a.source_instance = $source AND {has_fields}
QUALIFY row_number() OVER (PARTITION BY a.account_id ORDER BY a.source_updated_at DESC NULLS LAST, a.source_id) = 1
