-- Per account and currency, as of $as_of (DESIGN §4). Billable = not proforma/estimate, not
-- draft/void, issued on or before the as-of date.
WITH billable AS (
    SELECT * FROM staging.invoices
    WHERE kind NOT IN ('proforma', 'estimate')
      AND status NOT IN ('draft', 'void')
      AND issue_date <= $as_of
), flagged AS (
    SELECT *,
           status IN ('open', 'partially_paid') AND due_date < $as_of AND amount_due > 0 AS is_overdue
    FROM billable
)
SELECT account_id,
       currency,
       CAST($as_of AS DATE)                                                              AS as_of,
       count(*)                                                                          AS invoice_count,
       coalesce(sum(total_gross) FILTER (WHERE issue_date > $as_of - INTERVAL 365 DAY), 0) AS total_billed_12m,
       sum(paid_amount)                                                                  AS total_paid,
       coalesce(sum(amount_due) FILTER (WHERE status IN ('open', 'partially_paid')), 0)  AS total_due,
       count(*) FILTER (WHERE is_overdue)                                                AS overdue_invoice_count,
       coalesce(sum(amount_due) FILTER (WHERE is_overdue), 0)                            AS overdue_amount,
       min(due_date) FILTER (WHERE is_overdue)                                           AS overdue_since,
       CAST($as_of AS DATE) - min(due_date) FILTER (WHERE is_overdue)                    AS max_days_overdue,
       max(paid_date) FILTER (WHERE paid_amount > 0)                                     AS last_payment_date
FROM flagged
GROUP BY account_id, currency
