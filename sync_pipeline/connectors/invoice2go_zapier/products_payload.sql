-- The document posted to the products hook per source product (our own shape, README "Invoice2go").
SELECT our_key,
       CAST(json_object('kind', 'product', 'key', our_key, 'source', source, 'source_id', source_id,
                        'name', name, 'code', code, 'description', description, 'price', unit_price,
                        'currency', currency) AS VARCHAR) AS payload,
       CASE WHEN name IS NULL THEN 'no name: Invoice2go needs one' END AS blocked
FROM _source_products
