-- Checks every source's invoices get after the vendor's mapping: the raw problems (_problems, see
-- raw_problems.sql), and what no real document looks like: control characters in its number, a number
-- 500 characters long, a negative total on a kind that is never negative (credit notes and corrections may be).
-- A record that is not even a JSON object is only told so: listing every field it lacks would bury that.
UPDATE _invoices_mapped SET reason = concat_ws('; ',
    -- the hash only for the few records with a raw problem (hashing every payload cost seconds at 1M)
    CASE WHEN record_key IN (SELECT record_key FROM _problems) THEN
        (SELECT p.reason FROM _problems p
         WHERE p.record_key = _invoices_mapped.record_key AND p.content = md5(_invoices_mapped.payload::VARCHAR))
    END,
    CASE WHEN is_json_object(payload) THEN nullif(concat_ws('; ',
        text_problem('number', number),
        CASE WHEN total_gross < 0 AND kind IN ('invoice', 'advance', 'final', 'receipt', 'margin', 'proforma', 'estimate')
             THEN 'negative total ' || total_gross || ' on '
                  || CASE WHEN regexp_matches(coalesce(source_kind, kind), '^[aeiou]') THEN 'an ' ELSE 'a ' END
                  || coalesce(source_kind, kind) || ' document' END,
        nullif(reason, '')), '') END
);
