-- Zoho Invoice invoices and credit notes → canonical staging rows with a `reason` ('' when clean).
-- Placeholders: {invoices} {creditnotes} (raw tables), {instance} (quoted literal). Needs _accounts_mapped.
CREATE OR REPLACE TEMP TABLE _invoices_mapped AS
WITH src AS (
    SELECT record_key, source_id, payload, source_updated_at, 'invoice' AS entity,
           nullif(payload ->> 'invoice_number', '') AS number, payload ->> 'status' AS source_status
    FROM {invoices}
    UNION ALL
    SELECT record_key, source_id, payload, source_updated_at, 'creditnote',
           nullif(payload ->> 'creditnote_number', ''), payload ->> 'status'
    FROM {creditnotes}
), typed AS (
    SELECT s.*,
           nullif(trim(payload ->> 'customer_id'), '')          AS client_source_id,
           nullif(payload ->> 'date', '')                       AS issue_date_text,
           nullif(payload ->> 'due_date', '')                   AS due_date_text,
           nullif(payload ->> 'last_payment_date', '')          AS paid_date_text,
           nullif(payload ->> 'total', '')                      AS gross_text,
           nullif(payload ->> 'sub_total', '')                  AS net_text,
           nullif(payload ->> 'balance', '')                    AS balance_text,
           nullif(trim(payload ->> 'currency_code'), '')        AS currency_text,
           upper(trim(payload ->> 'currency_code'))             AS currency,
           source_date(nullif(payload ->> 'date', ''))          AS issue_date,
           source_date(nullif(payload ->> 'due_date', ''))      AS due_date,
           source_date(nullif(payload ->> 'last_payment_date', '')) AS paid_date,
           TRY_CAST(nullif(payload ->> 'total', '') AS DECIMAL(18, 2))     AS total,
           TRY_CAST(nullif(payload ->> 'sub_total', '') AS DECIMAL(18, 2)) AS total_net,
           TRY_CAST(nullif(payload ->> 'balance', '') AS DECIMAL(18, 2))   AS balance,
           -- a credit note is settled once issued (open: credit not yet used, closed: used up)
           CASE WHEN entity = 'creditnote' THEN CASE WHEN source_status IN ('open', 'closed') THEN 'paid'
                                                     WHEN source_status IN ('draft', 'void') THEN source_status END
                WHEN source_status = 'draft' THEN 'draft'
                WHEN source_status = 'void' THEN 'void'
                WHEN source_status = 'paid' THEN 'paid'
                WHEN source_status = 'partially_paid' THEN 'partially_paid'
                WHEN source_status IN ('sent', 'viewed', 'unpaid', 'overdue') THEN 'open'
           END AS status
    FROM src s
)
SELECT t.record_key, t.source_id, t.payload, t.source_updated_at,
       {instance} || ':' || CASE WHEN t.entity = 'creditnote' THEN 'cn:' ELSE '' END || t.source_id AS invoice_key,
       {instance} AS source_instance,
       a.account_id,
       t.number,
       CASE WHEN t.entity = 'creditnote' THEN 'credit_note' ELSE 'invoice' END AS kind,
       t.entity AS source_kind, t.status, t.source_status,
       t.issue_date, t.due_date, t.paid_date, t.currency,
       -- a credit note lowers what was billed; it is never owed
       CASE WHEN t.entity = 'creditnote' THEN -t.total_net ELSE t.total_net END AS total_net,
       CASE WHEN t.entity = 'creditnote' THEN -t.total ELSE t.total END AS total_gross,
       CASE WHEN t.entity = 'creditnote' THEN 0 ELSE greatest(t.total - coalesce(t.balance, 0), 0) END AS paid_amount,
       CASE WHEN t.entity = 'invoice' AND t.status IN ('open', 'partially_paid') THEN greatest(coalesce(t.balance, 0), 0)
            ELSE 0 END AS amount_due,
       t.payload ->> 'invoice_url' AS view_url,
       CAST(NULL AS VARCHAR) AS department,
       concat_ws('; ',
           CASE WHEN t.source_id IS NULL THEN 'no id' END,
           CASE WHEN t.client_source_id IS NULL THEN 'no customer_id' END,
           CASE WHEN t.client_source_id IS NOT NULL AND a.account_id IS NULL
                THEN 'customer ' || CASE WHEN length(t.client_source_id) <= 64 THEN t.client_source_id
                                         ELSE quote_value(t.client_source_id) END
                     || CASE WHEN t.client_source_id IN (SELECT source_id FROM _accounts_mapped WHERE source_id IS NOT NULL)
                             THEN ' is not a matched account'  -- no account id, or quarantined: the contact row says why
                             ELSE ' not found among the contacts read from ' || {instance} END END,
           CASE WHEN t.issue_date_text IS NULL THEN 'missing date'
                WHEN t.issue_date IS NULL THEN 'impossible date ' || quote_value(t.issue_date_text) END,
           CASE WHEN t.due_date_text IS NOT NULL AND t.due_date IS NULL
                THEN 'impossible due_date ' || quote_value(t.due_date_text) END,
           CASE WHEN t.paid_date_text IS NOT NULL AND t.paid_date IS NULL
                THEN 'impossible last_payment_date ' || quote_value(t.paid_date_text) END,
           CASE WHEN t.gross_text IS NULL THEN 'missing total'
                WHEN t.total IS NULL THEN 'unparseable total ' || quote_value(t.gross_text) END,
           CASE WHEN t.balance_text IS NOT NULL AND t.balance IS NULL
                THEN 'unparseable balance ' || quote_value(t.balance_text) END,
           -- what is still owed cannot exceed what was billed: that would overstate the overdue amount
           CASE WHEN t.entity = 'invoice' AND t.balance > t.total AND t.total >= 0
                THEN 'balance ' || t.balance || ' is more than the total ' || t.total END,
           -- Zoho credit notes carry positive totals (staging makes them negative); a negative one would add to billing
           CASE WHEN t.entity = 'creditnote' AND t.total < 0
                THEN 'negative total ' || t.total || ' on a credit note' END,
           CASE WHEN t.currency_text IS NULL THEN 'missing currency_code'
                WHEN t.currency NOT IN (SELECT code FROM meta.currencies) THEN 'unknown currency ' || quote_value(t.currency_text) END,
           CASE WHEN t.status IS NULL THEN coalesce('unknown status ' || quote_value(nullif(trim(t.source_status), '')),
                                                    'missing status') END
       ) AS reason
FROM typed t
LEFT JOIN _accounts_mapped a
       ON a.source_id = t.client_source_id AND a.reason = '' AND a.account_id IS NOT NULL;
