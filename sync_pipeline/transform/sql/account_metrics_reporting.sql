-- Roll the per-currency metrics up into the reporting currency ($reporting). A currency without a
-- rate contributes no amount (it is listed in unconverted_currencies); counts and dates still count.
-- The rate is widened to DECIMAL(38, 10): DECIMAL(18, 2) × DECIMAL(18, 8) overflows from 10^8 up.
WITH m AS (
    SELECT m.*, CAST(CASE WHEN m.currency = $reporting THEN 1 ELSE r.rate END AS DECIMAL(38, 10)) AS rate
    FROM marts.account_metrics m
    LEFT JOIN marts.fx_rates r ON r.currency = m.currency AND r.reporting_currency = $reporting
), rolled AS (
    SELECT account_id,
           any_value(as_of)                                      AS as_of,
           sum(invoice_count)                                    AS invoice_count,
           coalesce(sum(total_billed_12m * rate), 0)             AS total_billed_12m,
           coalesce(sum(total_paid * rate), 0)                   AS total_paid,
           coalesce(sum(total_due * rate), 0)                    AS total_due,
           sum(overdue_invoice_count)                            AS overdue_invoice_count,
           coalesce(sum(overdue_amount * rate), 0)               AS overdue_amount,
           min(overdue_since)                                    AS overdue_since,
           max(max_days_overdue)                                 AS max_days_overdue,
           coalesce(sum(aging_current * rate), 0)                AS aging_current,
           coalesce(sum(aging_1_30 * rate), 0)                   AS aging_1_30,
           coalesce(sum(aging_31_60 * rate), 0)                  AS aging_31_60,
           coalesce(sum(aging_61_90 * rate), 0)                  AS aging_61_90,
           coalesce(sum(aging_91_plus * rate), 0)                AS aging_91_plus,
           coalesce(sum(billed_90d * rate), 0)                   AS billed_90d,
           max(last_payment_date)                                AS last_payment_date,
           list_sort(coalesce(list(currency) FILTER (WHERE rate IS NULL), []))    AS unconverted_currencies
    FROM m
    GROUP BY account_id
)
SELECT account_id, $reporting AS reporting_currency, as_of, invoice_count,
       round(total_billed_12m, 2), round(total_paid, 2), round(total_due, 2), overdue_invoice_count,
       round(overdue_amount, 2), overdue_since, max_days_overdue,
       round(aging_current, 2), round(aging_1_30, 2), round(aging_31_60, 2), round(aging_61_90, 2),
       round(aging_91_plus, 2), round(billed_90d, 2),
       CASE WHEN billed_90d > 0 THEN round(total_due / billed_90d * 90, 1) END AS dso_90d,
       last_payment_date, unconverted_currencies
FROM rolled
