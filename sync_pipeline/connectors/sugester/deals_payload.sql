-- Desired Sugester deals: one per invoice of the selected document kinds, for the Sugester client its client
-- is linked to (sync.links, the two-way client sync), with the link back to the invoice and our key in
-- external_ids.
SELECT i.invoice_key AS our_key,
       CAST(json_object(
           'name', coalesce(i.number, i.invoice_key),
           'price', i.total_gross,
           'currency', i.currency,
           'url', i.view_url,
           'client_id', TRY_CAST(c.b_id AS BIGINT),
           'paid', i.status = 'paid',
           'description', i.source_kind || ' ' || coalesce(i.number, '') || ' issued ' || CAST(i.issue_date AS VARCHAR)
                          || coalesce(', due ' || CAST(i.due_date AS VARCHAR), '') || ': ' || i.status
                          || ', paid ' || CAST(i.paid_amount AS VARCHAR) || ' of ' || CAST(i.total_gross AS VARCHAR)
                          || ' ' || i.currency,
           'external_ids', json_object('sync_pipeline', i.invoice_key)
       ) AS VARCHAR) AS payload,
       CASE WHEN c.b_id IS NULL AND NOT $dry_run
            THEN 'client ' || i.account_id || ' is not in the target yet' END AS blocked
FROM staging.invoices i
LEFT JOIN staging.accounts a ON a.account_id = i.account_id AND a.source_instance = i.source_instance
LEFT JOIN sync.links c
       ON c.connection = $connection AND c.entity = 'clients' AND c.a_id = a.source_id AND c.b_id IS NOT NULL
WHERE i.source_instance = $source
  AND list_contains($deal_kinds, i.source_kind)
