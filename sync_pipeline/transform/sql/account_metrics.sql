-- Per account and currency, as of $as_of (DESIGN §4).
-- Billable = kind not proforma/estimate, status not draft/void, issued on or before the as-of date.
-- Credit notes and corrections are billable: a negative total lowers what was billed; their
-- amount_due is 0 (staging never stores a negative amount due), so they are never overdue.
WITH billable AS (
    SELECT *,
           status IN ('open', 'partially_paid') AND amount_due > 0 AS is_due,
           CAST($as_of AS DATE) - due_date AS days_past_due
    FROM staging.invoices
    WHERE kind NOT IN ('proforma', 'estimate')
      AND status NOT IN ('draft', 'void')
      AND issue_date <= $as_of
), flagged AS (
    SELECT *, is_due AND due_date < $as_of AS is_overdue FROM billable
), per_currency AS (
    SELECT account_id,
           currency,
           count(*)                                                                            AS invoice_count,
           coalesce(sum(total_gross) FILTER (WHERE issue_date > $as_of - INTERVAL 365 DAY), 0) AS total_billed_12m,
           coalesce(sum(paid_amount), 0)                                                       AS total_paid,
           coalesce(sum(amount_due) FILTER (WHERE is_due), 0)                                  AS total_due,
           count(*) FILTER (WHERE is_overdue)                                                  AS overdue_invoice_count,
           coalesce(sum(amount_due) FILTER (WHERE is_overdue), 0)                              AS overdue_amount,
           min(due_date) FILTER (WHERE is_overdue)                                             AS overdue_since,
           coalesce(sum(amount_due) FILTER (WHERE is_due AND NOT is_overdue), 0)               AS aging_current,
           coalesce(sum(amount_due) FILTER (WHERE is_overdue AND days_past_due BETWEEN 1 AND 30), 0)  AS aging_1_30,
           coalesce(sum(amount_due) FILTER (WHERE is_overdue AND days_past_due BETWEEN 31 AND 60), 0) AS aging_31_60,
           coalesce(sum(amount_due) FILTER (WHERE is_overdue AND days_past_due BETWEEN 61 AND 90), 0) AS aging_61_90,
           coalesce(sum(amount_due) FILTER (WHERE is_overdue AND days_past_due > 90), 0)       AS aging_91_plus,
           coalesce(sum(total_gross) FILTER (WHERE issue_date > $as_of - INTERVAL 90 DAY), 0)  AS billed_90d,
           max(paid_date) FILTER (WHERE paid_amount > 0)                                       AS last_payment_date
    FROM flagged
    GROUP BY account_id, currency
)
SELECT account_id, currency, CAST($as_of AS DATE) AS as_of, invoice_count, total_billed_12m, total_paid, total_due,
       overdue_invoice_count, overdue_amount, overdue_since,
       CAST($as_of AS DATE) - overdue_since AS max_days_overdue,
       aging_current, aging_1_30, aging_31_60, aging_61_90, aging_91_plus, billed_90d,
       CASE WHEN billed_90d > 0 THEN round(total_due / billed_90d * 90, 1) END AS dso_90d,
       last_payment_date
FROM per_currency
