-- Checks every source's invoices get after the vendor's mapping: the raw problems (_problems, see
-- raw_problems.sql), and what no real document looks like: control characters in its number, a negative
-- total on a kind that is never negative (credit notes and corrections may be).
UPDATE _invoices_mapped SET reason = concat_ws('; ',
    (SELECT p.reason FROM _problems p
     WHERE p.record_key = _invoices_mapped.record_key AND p.content = md5(_invoices_mapped.payload::VARCHAR)),
    CASE WHEN regexp_matches(number, '[[:cntrl:]�]') THEN 'control or invalid characters in number '
                                                          || quote_value(regexp_replace(number, '[[:cntrl:]�]', '?', 'g')) END,
    CASE WHEN total_gross < 0 AND kind IN ('invoice', 'advance', 'final', 'receipt', 'margin', 'proforma', 'estimate')
         THEN 'negative total ' || total_gross || ' on a ' || coalesce(source_kind, kind) || ' document' END,
    nullif(reason, '')
);
