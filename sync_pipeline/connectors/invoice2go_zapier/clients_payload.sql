-- The document posted to the clients hook per source client (our own shape, README "Invoice2go"): one row per
-- record of _source_clients (load/source_rows.py). A client without a name is held back: Invoice2go needs one.
SELECT our_key,
       CAST(json_object('kind', 'client', 'key', our_key, 'source', source, 'source_id', source_id,
                        'name', name, 'email', email, 'phone', phone, 'contact_name', NULL,
                        'billing_address', nullif(concat_ws(', ', street, nullif(trim(concat_ws(' ', post_code, city)), ''),
                                                            country), ''),
                        'tax_number', tax_id, 'notes', NULL) AS VARCHAR) AS payload,
       CASE WHEN name IS NULL THEN 'no name: Invoice2go needs one' END AS blocked
FROM _source_clients
