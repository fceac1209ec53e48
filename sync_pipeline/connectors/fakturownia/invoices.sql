-- Fakturownia / InvoiceOcean invoices → canonical staging rows with a `reason` ('' when clean).
-- Placeholders: {invoices} (raw table), {instance}, {base_url} (quoted literals; base_url may be empty). Needs _accounts_mapped (identity.sql).
CREATE OR REPLACE TEMP TABLE _invoices_mapped AS
WITH fields AS (
    -- every field read in one parse of the payload (each `->>` would parse the whole document again)
    SELECT i.record_key, i.source_id, i.payload, i.source_updated_at,
           json_extract_string(i.payload, ['client_id', 'kind', 'status', 'cancelled', 'issue_date', 'payment_to',
                                           'paid_date', 'price_net', 'price_gross', 'paid', 'currency', 'number',
                                           'view_url', 'token', 'department_id']) AS f
    FROM {invoices} i
), src AS (
    SELECT record_key, source_id, payload, source_updated_at,
           nullif(trim(f[1]), '')                      AS client_source_id,
           f[2]                                        AS source_kind,
           f[3]                                        AS source_status,
           coalesce(TRY_CAST(f[4] AS BOOLEAN), false)  AS cancelled,
           nullif(f[5], '')                            AS issue_date_text,
           nullif(f[6], '')                            AS due_date_text,
           nullif(f[7], '')                            AS paid_date_text,
           nullif(f[8], '')                            AS net_text,
           nullif(f[9], '')                            AS gross_text,
           nullif(f[10], '')                           AS paid_text,
           nullif(trim(f[11]), '')                     AS currency_text,
           upper(trim(f[11]))                          AS currency,
           f[12]                                       AS number,
           f[13]                                       AS view_url_text,
           f[14]                                       AS token,
           nullif(trim(f[15]), '')                     AS department   -- the seller's department (its id)
    FROM fields
), typed AS (
    SELECT s.*,
           source_date(issue_date_text)               AS issue_date,
           source_date(due_date_text)                 AS due_date,
           source_date(paid_date_text)                AS paid_date,
           TRY_CAST(net_text AS DECIMAL(18, 2))       AS total_net,
           TRY_CAST(gross_text AS DECIMAL(18, 2))     AS total_gross,
           coalesce(TRY_CAST(paid_text AS DECIMAL(18, 2)), CASE WHEN paid_text IS NULL THEN 0 END) AS paid_amount,
           CASE WHEN cancelled OR source_status = 'rejected' THEN 'void'
                WHEN source_status IN ('issued', 'sent') THEN 'open'
                WHEN source_status = 'partial' THEN 'partially_paid'
                WHEN source_status = 'paid' THEN 'paid'
           END AS status,
           -- every documented kind maps; a kind Fakturownia does not document is questioned, not counted as billed
           CASE WHEN source_kind IN ('vat', 'bill', 'vat_mp', 'vat_rr', 'wdt', 'wnt', 'dw', 'export_products',
                                     'import_service', 'import_service_eu', 'import_products', 'invoice_other') THEN 'invoice'
                WHEN source_kind IN ('correction', 'correction_note') THEN 'correction'
                WHEN source_kind = 'vat_margin' THEN 'margin'
                WHEN source_kind IN ('receipt', 'advance', 'final', 'proforma') THEN source_kind
                WHEN source_kind IN ('estimate', 'client_order') THEN 'estimate'
                WHEN source_kind IN ('kp', 'kw', 'accounting_note') THEN 'other'
           END AS kind
    FROM src s
)
SELECT t.record_key, t.source_id, t.payload, t.source_updated_at,
       {instance} || ':' || t.source_id AS invoice_key,
       {instance}                        AS source_instance,
       a.account_id,
       t.number,
       t.kind, t.source_kind, t.status, t.source_status,
       t.issue_date, t.due_date, t.paid_date, t.currency,
       t.total_net, t.total_gross, t.paid_amount,
       -- never negative: a credit note or an overpayment is not money the customer owes
       CASE WHEN t.status IN ('open', 'partially_paid') THEN greatest(t.total_gross - t.paid_amount, 0) ELSE 0 END AS amount_due,
       -- Real records often carry `token` but no `view_url`: the documented preview link is <base_url>/invoice/<token>
       coalesce(nullif(trim(t.view_url_text), ''),
                CASE WHEN {base_url} <> '' AND regexp_full_match(t.token, '[A-Za-z0-9_-]{{1,200}}')
                     THEN {base_url} || '/invoice/' || t.token END) AS view_url,
       t.department,
       concat_ws('; ',
           CASE WHEN t.source_id IS NULL THEN 'no id' END,
           CASE WHEN t.client_source_id IS NULL THEN 'no client_id' END,
           CASE WHEN t.client_source_id IS NOT NULL AND a.account_id IS NULL
                THEN 'client ' || CASE WHEN length(t.client_source_id) <= 64 THEN t.client_source_id
                                       ELSE quote_value(t.client_source_id) END
                     || CASE WHEN t.client_source_id IN (SELECT source_id FROM _accounts_mapped WHERE source_id IS NOT NULL)
                             THEN ' is not a staged account'  -- quarantined: the client row says why
                             ELSE ' not found among the clients read from ' || {instance} END END,
           CASE WHEN t.issue_date_text IS NULL THEN 'missing issue_date'
                WHEN t.issue_date IS NULL THEN 'impossible issue_date ' || quote_value(t.issue_date_text) END,
           CASE WHEN t.due_date_text IS NOT NULL AND t.due_date IS NULL
                THEN 'impossible payment_to ' || quote_value(t.due_date_text) END,
           CASE WHEN t.paid_date_text IS NOT NULL AND t.paid_date IS NULL
                THEN 'impossible paid_date ' || quote_value(t.paid_date_text) END,
           CASE WHEN t.gross_text IS NULL THEN 'missing price_gross'
                WHEN t.total_gross IS NULL THEN 'unparseable price_gross ' || quote_value(t.gross_text) END,
           CASE WHEN t.net_text IS NOT NULL AND t.total_net IS NULL
                THEN 'unparseable price_net ' || quote_value(t.net_text) END,
           CASE WHEN t.paid_amount IS NULL THEN 'unparseable paid ' || quote_value(t.paid_text) END,
           CASE WHEN t.currency_text IS NULL THEN 'missing currency'
                WHEN t.currency NOT IN (SELECT code FROM meta.currencies) THEN 'unknown currency ' || quote_value(t.currency_text) END,
           CASE WHEN t.status IS NULL THEN coalesce('unknown status ' || quote_value(nullif(trim(t.source_status), '')),
                                                    'missing status') END,
           CASE WHEN t.kind IS NULL THEN coalesce('unknown kind ' || quote_value(nullif(trim(t.source_kind), '')),
                                                  'missing kind') END
       ) AS reason
FROM typed t
LEFT JOIN _accounts_mapped a
       ON a.source_id = t.client_source_id AND a.reason = '' AND a.account_id IS NOT NULL;
