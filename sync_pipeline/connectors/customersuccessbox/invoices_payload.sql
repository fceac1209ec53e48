-- Desired CustomerSuccessBox invoices: every invoice of a pushed account, with the status in CSB's
-- vocabulary (Paid, Not Paid, Void, Draft, Future) as of the metrics date. Credit notes are not invoices.
WITH d AS (SELECT coalesce(max(as_of), current_date) AS as_of FROM marts.financial_health)
SELECT i.invoice_key AS our_key,
       CAST(json_object(
           'invoice_id', i.invoice_key, 'account_id', i.account_id, 'invoice_number', i.number,
           'status', CASE WHEN i.status = 'draft' THEN 'Draft'
                          WHEN i.status = 'void' THEN 'Void'
                          WHEN i.issue_date > d.as_of THEN 'Future'
                          WHEN i.status = 'paid' THEN 'Paid'
                          ELSE 'Not Paid' END,
           'total', i.total_gross, 'paid_amount', i.paid_amount, 'amount_due', i.amount_due,
           'paid_on', CAST(i.paid_date AS VARCHAR), 'due_date', CAST(i.due_date AS VARCHAR),
           'issue_date', CAST(i.issue_date AS VARCHAR), 'currency', i.currency, 'url', i.view_url
       ) AS VARCHAR) AS payload,
       CASE WHEN acc.target_id IS NULL AND NOT $dry_run
            THEN 'account ' || i.account_id || ' is not in the target yet' END AS blocked
FROM staging.invoices i
CROSS JOIN d
LEFT JOIN sync.ledger acc
       ON acc.connection = $connection AND acc.entity = 'accounts' AND acc.our_key = i.account_id
      AND acc.target_id IS NOT NULL
WHERE i.source_instance = $source AND i.kind NOT IN ('credit_note', 'correction')
