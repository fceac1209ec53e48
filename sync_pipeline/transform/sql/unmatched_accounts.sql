-- Customers that cannot be synced, from the client rows of staging.quarantine, with how many of
-- their invoices are held back (invoices name the customer id in their quarantine reason).
SELECT q.system, q.source_id,
       -- a report for people: a record may carry a 1 MB name
       CASE WHEN length(q.name) > 100 THEN left(q.name, 100) || '…' ELSE q.name END AS name,
       q.problem, q.reason, q.invoices_held, q.first_seen_at
FROM (
    SELECT q.source_instance AS system, q.source_id,
           coalesce(nullif(q.payload ->> 'company_name', ''), nullif(q.payload ->> 'contact_name', ''),
                    nullif(q.payload ->> 'name', '')) AS name,
           CASE WHEN q.reason LIKE 'identifier drift%' THEN 'identifier_drift' ELSE 'no_identifier' END AS problem,
           q.reason,
           (SELECT count(*) FROM staging.quarantine i
            WHERE i.entity = 'invoices' AND i.source_instance = q.source_instance
              AND q.source_id IS NOT NULL AND i.reason LIKE '%' || q.source_id || ' is not a %') AS invoices_held,
           q.first_seen_at
    FROM staging.quarantine q
    WHERE q.entity = 'clients'
) q
