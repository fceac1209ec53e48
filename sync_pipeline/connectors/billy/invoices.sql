-- Billy invoices and credit notes → canonical staging rows with a `reason` ('' when clean). Placeholders: {invoices}
-- (raw table), {instance} (quoted literal). Needs _accounts_mapped. Status (DESIGN §3): draft → draft, voided → void,
-- approved and isPaid → paid, approved with 0 < balance < grossAmount → partially_paid, other approved → open;
-- amount_due = balance. Billy has no payment date on the invoice [O]: paid_date stays empty.
CREATE OR REPLACE TEMP TABLE _invoices_mapped AS
WITH typed AS (
    SELECT record_key, source_id, payload, source_updated_at,
           replace(coalesce(payload ->> 'type', 'invoice'), 'credit_note', 'creditNote') AS source_kind,
           payload ->> 'state'                                      AS source_status,
           nullif(trim(payload ->> 'invoiceNo'), '')                AS number,
           nullif(trim(payload ->> 'contactId'), '')                AS client_source_id,
           nullif(payload ->> 'entryDate', '')                      AS issue_date_text,
           nullif(payload ->> 'dueDate', '')                        AS due_date_text,
           nullif(payload ->> 'grossAmount', '')                    AS gross_text,
           nullif(trim(payload ->> 'currencyId'), '')               AS currency_text,
           upper(trim(payload ->> 'currencyId'))                    AS currency,
           source_date(nullif(payload ->> 'entryDate', ''))         AS issue_date,
           source_date(nullif(payload ->> 'dueDate', ''))           AS due_date,
           TRY_CAST(nullif(payload ->> 'grossAmount', '') AS DECIMAL(18, 2)) AS total,
           TRY_CAST(nullif(payload ->> 'amount', '') AS DECIMAL(18, 2))      AS total_net,
           TRY_CAST(nullif(payload ->> 'balance', '') AS DECIMAL(18, 2))     AS balance,
           TRY_CAST(payload ->> 'isPaid' AS BOOLEAN)                AS is_paid
    FROM {invoices}
), s AS (
    SELECT *,
           CASE WHEN source_status = 'draft' THEN 'draft'
                WHEN source_status = 'voided' THEN 'void'
                WHEN source_status = 'approved' AND source_kind = 'creditNote' THEN 'paid'  -- settled once issued
                WHEN source_status = 'approved' AND is_paid THEN 'paid'
                WHEN source_status = 'approved' AND balance > 0 AND balance < total THEN 'partially_paid'
                WHEN source_status = 'approved' THEN 'open'
           END AS status
    FROM typed
)
SELECT t.record_key, t.source_id, t.payload, t.source_updated_at,
       {instance} || ':' || t.source_id AS invoice_key,
       {instance} AS source_instance,
       a.account_id,
       t.number,
       CASE WHEN t.source_kind = 'creditNote' THEN 'credit_note' ELSE 'invoice' END AS kind,
       t.source_kind, t.status, t.source_status,
       t.issue_date, t.due_date, CAST(NULL AS DATE) AS paid_date, t.currency,
       -- a credit note lowers what was billed; it is never owed
       CASE WHEN t.source_kind = 'creditNote' THEN -t.total_net ELSE t.total_net END AS total_net,
       CASE WHEN t.source_kind = 'creditNote' THEN -t.total ELSE t.total END AS total_gross,
       CASE WHEN t.source_kind = 'creditNote' THEN 0 ELSE greatest(t.total - coalesce(t.balance, 0), 0) END AS paid_amount,
       CASE WHEN t.source_kind <> 'creditNote' AND t.status IN ('open', 'partially_paid')
            THEN greatest(coalesce(t.balance, 0), 0) ELSE 0 END AS amount_due,
       CAST(NULL AS VARCHAR) AS view_url,
       CAST(NULL AS VARCHAR) AS department,
       concat_ws('; ',
           CASE WHEN t.source_id IS NULL THEN 'no id' END,
           CASE WHEN t.client_source_id IS NULL THEN 'no contactId' END,
           CASE WHEN t.client_source_id IS NOT NULL AND a.account_id IS NULL
                THEN 'contact ' || CASE WHEN length(t.client_source_id) <= 64 THEN t.client_source_id
                                        ELSE quote_value(t.client_source_id) END
                     || CASE WHEN t.client_source_id IN (SELECT source_id FROM _accounts_mapped WHERE source_id IS NOT NULL)
                             THEN ' is not a matched account'
                             ELSE ' not found among the contacts read from ' || {instance} END END,
           CASE WHEN t.issue_date_text IS NULL THEN 'missing entryDate'
                WHEN t.issue_date IS NULL THEN 'impossible entryDate ' || quote_value(t.issue_date_text) END,
           CASE WHEN t.due_date_text IS NOT NULL AND t.due_date IS NULL
                THEN 'impossible dueDate ' || quote_value(t.due_date_text) END,
           CASE WHEN t.gross_text IS NULL THEN 'missing grossAmount'
                WHEN t.total IS NULL THEN 'unparseable grossAmount ' || quote_value(t.gross_text) END,
           CASE WHEN t.source_kind <> 'creditNote' AND t.balance > t.total AND t.total >= 0
                THEN 'balance ' || t.balance || ' is more than the total ' || t.total END,
           CASE WHEN t.source_kind = 'creditNote' AND t.total < 0
                THEN 'negative grossAmount ' || t.total || ' on a credit note' END,
           CASE WHEN t.currency_text IS NULL THEN 'missing currencyId'
                WHEN t.currency NOT IN (SELECT code FROM meta.currencies) THEN 'unknown currency ' || quote_value(t.currency_text) END,
           CASE WHEN t.status IS NULL THEN coalesce('unknown state ' || quote_value(nullif(trim(t.source_status), '')),
                                                    'missing state') END
       ) AS reason
FROM s t
LEFT JOIN _accounts_mapped a
       ON a.source_id = t.client_source_id AND a.reason = '' AND a.account_id IS NOT NULL;
