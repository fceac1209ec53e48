-- Desired Sugester clients for a connection: one per staged account of its source, keyed by account_id.
SELECT account_id AS our_key,
       CAST(json_object(
           'name', name, 'tax_no', tax_id, 'email', email, 'phone', phone, 'street', street, 'city', city,
           'post_code', post_code, 'country', country, 'external_id', account_id,
           'external_ids', json_object('sync_pipeline', account_id)
       ) AS VARCHAR) AS payload,
       CAST(NULL AS VARCHAR) AS blocked
FROM staging.accounts
WHERE source_instance = $source
QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY source_updated_at DESC NULLS LAST, source_id) = 1
