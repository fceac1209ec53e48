-- Desired CustomerSuccessBox accounts: one per staged account of the source, keyed by the immutable
-- account_id, with its metrics (reporting currency) and financial health as properties.
SELECT a.account_id AS our_key,
       CAST(json_object(
           'account_id', a.account_id, 'name', a.name, 'email', a.email, 'phone', a.phone,
           'overdue_amount', coalesce(r.overdue_amount, 0),
           'overdue_invoice_count', coalesce(r.overdue_invoice_count, 0),
           'invoice_overdue_since', CAST(r.overdue_since AS VARCHAR),
           'total_due', coalesce(r.total_due, 0),
           'total_paid', coalesce(r.total_paid, 0),
           'billed_amount', coalesce(r.total_billed_12m, 0),
           'currency', coalesce(r.reporting_currency, $reporting),
           'health_score', h.score, 'health_band', coalesce(h.band, 'unknown'), 'health_reason', h.reason
       ) AS VARCHAR) AS payload,
       CAST(NULL AS VARCHAR) AS blocked
FROM staging.accounts a
LEFT JOIN marts.account_metrics_reporting r ON r.account_id = a.account_id
LEFT JOIN marts.financial_health h ON h.account_id = a.account_id
WHERE a.source_instance = $source
QUALIFY row_number() OVER (PARTITION BY a.account_id ORDER BY a.source_updated_at DESC NULLS LAST, a.source_id) = 1
