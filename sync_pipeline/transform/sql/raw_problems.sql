-- Problems any source's raw record can have, whatever the vendor, keyed by record and content so the
-- two versions of a conflicting duplicate each get theirs. Placeholders: {table} (a raw table),
-- {id_key} and {updated_key} (where the vendor keeps the id and the last-change time, quoted),
-- {skew} (the system's max clock skew, quoted interval).
SELECT record_key, content, reason
FROM (
    SELECT record_key, coalesce(content, md5(payload::VARCHAR)) AS content,  -- content: md5 kept at landing
           concat_ws('; ',
               conflict,
               CASE WHEN NOT is_json_object(payload)
                    THEN 'the record is a JSON ' || json_kind(payload) || ', not an object' END,
               -- an id that is an object, a list or a boolean left source_id empty at landing: only then is it looked at
               CASE WHEN source_id IS NULL THEN
                   CASE WHEN json_type(payload -> {id_key}) IN ('OBJECT', 'ARRAY', 'BOOLEAN')
                        THEN 'id is a JSON ' || json_kind(payload -> {id_key}) || ', not a number or a string' END
               END,
               CASE WHEN length(source_id) > 64 THEN 'id is ' || length(source_id) || ' characters long' END,
               CASE WHEN source_updated_at IS NULL AND nullif(trim(payload ->> {updated_key}), '') IS NOT NULL
                    THEN 'unparseable ' || {updated_key} || ' ' || quote_value(payload ->> {updated_key}) END,
               CASE WHEN source_updated_at > extracted_at + INTERVAL {skew}
                    THEN 'updated_at ' || strftime(source_updated_at, '%Y-%m-%d %H:%M UTC') || ' is in the future (read at '
                         || strftime(extracted_at, '%Y-%m-%d %H:%M UTC') || ')' END
           ) AS reason
    FROM {table}
)
WHERE reason <> ''
