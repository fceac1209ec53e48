-- Billy approved invoices ({doc_type} 'invoice') or credit notes ('creditNote'; 'credit_note' is read too [O]) as one
-- side of the two-way sync (load/entities.py). Placeholders: {raw} (raw invoices), {instance}, {doc_type}.
-- Drafts are not synced (they change freely and have no number); a voided one reads as deleted in Billy.
-- Our key travels in `externalId`, which Billy filters on [O]. The customer and each line's product are Billy ids
-- here; the engine puts them in the links' terms.
CREATE OR REPLACE TEMP TABLE _rows AS
WITH i AS (
    SELECT record_key, source_id, payload, source_updated_at,
           CAST(coalesce(payload -> 'lines', '[]') AS JSON[]) AS lines
    FROM {raw}
    WHERE payload ->> 'state' = 'approved'
      AND replace(coalesce(payload ->> 'type', 'invoice'), 'credit_note', 'creditNote') = {doc_type}
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       nullif(trim(payload ->> 'externalId'), '')                     AS ref_key,
       nullif(trim(payload ->> 'lineDescription'), '')                AS title,
       nullif(payload ->> 'contactId', '')                            AS customer,
       TRY_CAST(payload ->> 'entryDate' AS DATE)                      AS issue_date,
       TRY_CAST(payload ->> 'dueDate' AS DATE)                        AS due_date,
       coalesce(TRY_CAST(payload ->> 'isPaid' AS BOOLEAN), false)     AS paid,
       list_transform(list_sort(list_transform(lines, lambda l: struct_pack(
                          pos := coalesce(TRY_CAST(l ->> 'priority' AS INTEGER), 0),
                          product := nullif(l ->> 'productId', ''),
                          description := nullif(trim(l ->> 'description'), ''),
                          quantity := TRY_CAST(l ->> 'quantity' AS DECIMAL(18, 3)),
                          unit_price := TRY_CAST(l ->> 'unitPrice' AS DECIMAL(18, 2))))),
                      lambda l: struct_pack(product := l.product, description := l.description, quantity := l.quantity,
                                            unit_price := l.unit_price)) AS lines
FROM i;
