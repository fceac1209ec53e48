-- Simply CRM Invoice records as one side of the two-way sync: invoices ({credit} false) or credit notes ({credit}
-- true: the instance marks them with invoicestatus 'Credit Invoice' [V]). Cancelled ones read as deleted.
-- Placeholders: {raw}, {instance}, {credit}, {invoice_link} ('organisations' | 'contacts': which reference is the
-- customer when an invoice has both an organisation and a contact). LineItems come from `retrieve` [I].
CREATE OR REPLACE TEMP TABLE _rows AS
WITH i AS (
    SELECT record_key, source_id, payload, source_updated_at,
           CAST(coalesce(payload -> 'LineItems', '[]') AS JSON[]) AS items,
           nullif(trim(payload ->> 'account_id'), '') AS account, nullif(trim(payload ->> 'contact_id'), '') AS contact
    FROM {raw}
    WHERE (payload ->> 'invoicestatus' = 'Credit Invoice') = {credit}
      AND coalesce(payload ->> 'invoicestatus', '') NOT IN ('Cancel', 'Cancelled')
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,
       nullif(trim(payload ->> 'subject'), '')                        AS title,
       CASE WHEN {invoice_link} = 'contacts' THEN coalesce(contact, account) ELSE coalesce(account, contact) END
                                                                      AS customer,
       TRY_CAST(nullif(payload ->> 'invoicedate', '') AS DATE)        AS issue_date,
       TRY_CAST(nullif(payload ->> 'duedate', '') AS DATE)            AS due_date,
       payload ->> 'invoicestatus' = 'Paid'                           AS paid,
       list_transform(items, lambda l: struct_pack(
           product := nullif(l ->> 'productid', ''),
           description := nullif(trim(l ->> 'comment'), ''),
           quantity := TRY_CAST(nullif(l ->> 'quantity', '') AS DECIMAL(18, 3)),
           unit_price := TRY_CAST(nullif(l ->> 'listprice', '') AS DECIMAL(18, 2))))   AS lines
FROM i;
