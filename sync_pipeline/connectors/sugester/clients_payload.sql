-- Desired Sugester clients for a connection: one per staged account of its source, keyed by account_id,
-- with the configured metric fields (placeholders filled by load/metric_fields.py).
SELECT a.account_id AS our_key,
       CAST(json_object(
           'name', a.name, 'tax_no', a.tax_id, 'email', a.email, 'phone', a.phone, 'street', a.street,
           'city', a.city, 'post_code', a.post_code, 'country', a.country, 'external_id', a.account_id,
           'external_ids', json_object('sync_pipeline', a.account_id){metric_fields}
       ) AS VARCHAR) AS payload,
       CAST(NULL AS VARCHAR) AS blocked
FROM staging.accounts a
{metric_joins}
WHERE a.source_instance = $source
QUALIFY row_number() OVER (PARTITION BY a.account_id ORDER BY a.source_updated_at DESC NULLS LAST, a.source_id) = 1
