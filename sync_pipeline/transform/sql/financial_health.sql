-- Financial health per account from the rolled-up metrics (reporting currency $reporting).
-- score = 100 × (1 − (w_share × overdue share + w_days × days factor + w_count × count factor)), where
--   overdue share = overdue amount ÷ max(billed in 12 months, total due, overdue amount)   (0..1)
--   days factor   = min(max days overdue, $days_cap) ÷ $days_cap                           (0..1)
--   count factor  = min(overdue invoice count, $count_cap) ÷ $count_cap                    (0..1)
-- and the weights sum to 1. Every staged account gets a row; unknown: no billable invoice, or no
-- convertible amount at all.
WITH currencies AS (
    SELECT account_id, count(*) AS n FROM marts.account_metrics GROUP BY account_id
), accounts AS (
    SELECT DISTINCT account_id FROM staging.accounts
    UNION SELECT account_id FROM marts.account_metrics_reporting
), inputs AS (
    SELECT a.account_id, CAST($as_of AS DATE) AS as_of,
           coalesce(r.invoice_count, 0) AS invoice_count, r.total_billed_12m, r.total_due, r.overdue_amount,
           coalesce(r.overdue_invoice_count, 0) AS overdue_invoice_count, r.max_days_overdue,
           coalesce(r.unconverted_currencies, []) AS unconverted_currencies,
           coalesce(r.invoice_count, 0) > 0 AND len(r.unconverted_currencies) < c.n AS known,
           CASE WHEN greatest(r.total_billed_12m, r.total_due, r.overdue_amount) > 0
                THEN r.overdue_amount / greatest(r.total_billed_12m, r.total_due, r.overdue_amount) ELSE 0 END AS share,
           least(coalesce(r.max_days_overdue, 0), $days_cap) / $days_cap          AS days_factor,
           least(coalesce(r.overdue_invoice_count, 0), $count_cap) / $count_cap  AS count_factor
    FROM accounts a
    LEFT JOIN marts.account_metrics_reporting r USING (account_id)
    LEFT JOIN currencies c USING (account_id)
), scored AS (
    SELECT *, CAST(round(100 * (1 - ($w_share * share + $w_days * days_factor + $w_count * count_factor))) AS INTEGER) AS raw_score
    FROM inputs
)
SELECT account_id, as_of,
       CASE WHEN known THEN raw_score END AS score,
       CASE WHEN NOT known THEN 'unknown'
            WHEN raw_score >= $healthy THEN 'healthy'
            WHEN raw_score >= $at_risk THEN 'at_risk'
            ELSE 'critical' END AS band,
       CASE WHEN invoice_count = 0 THEN 'no billable invoices'
            WHEN NOT known THEN 'no exchange rate for ' || array_to_string(unconverted_currencies, ', ')
            WHEN overdue_invoice_count > 0 THEN
                 format('{:d} invoice{} overdue, {} {}, oldest {:d} days', overdue_invoice_count,
                        CASE WHEN overdue_invoice_count = 1 THEN '' ELSE 's' END,
                        replace(format('{:,.2f}', overdue_amount), ',', ' '), $reporting, max_days_overdue)
            WHEN total_due > 0 THEN format('nothing overdue, {} {} due', replace(format('{:,.2f}', total_due), ',', ' '), $reporting)
            ELSE 'nothing due' END
       || CASE WHEN known AND len(unconverted_currencies) > 0
               THEN ' (not counted, no exchange rate: ' || array_to_string(unconverted_currencies, ', ') || ')' ELSE '' END
       AS reason
FROM scored
