-- Billy contacts of one type ({contact_type}: 'company' → organisations, 'person' → contacts) as one side of a
-- two-way sync (load/entities.py). Placeholders: {raw} (raw table of contacts), {instance}, {contact_type}.
-- Archived contacts are left out (they read as deleted in Billy). The e-mail is the primary contact person's [O].
CREATE OR REPLACE TEMP TABLE _rows AS
WITH c AS (
    SELECT record_key, source_id, payload, source_updated_at,
           CAST(coalesce(payload -> 'contactPersons', '[]') AS JSON[]) AS persons
    FROM {raw}
    WHERE payload ->> 'type' = {contact_type} AND coalesce(payload ->> 'isArchived', 'false') <> 'true'
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,  -- no external-id field on contacts
       nullif(trim(payload ->> 'name'), '')                           AS name,
       nullif(trim(coalesce(list_filter(persons, lambda x: (x ->> 'isPrimary') = 'true')[1], persons[1]) ->> 'email'),
              '')                                                     AS email,
       nullif(trim(payload ->> 'phone'), '')                          AS phone,
       nullif(trim(payload ->> 'street'), '')                         AS street,
       nullif(trim(payload ->> 'cityText'), '')                       AS city,
       nullif(trim(payload ->> 'zipcodeText'), '')                    AS post_code,
       nullif(upper(trim(payload ->> 'countryId')), '')               AS country,
       nullif(trim(payload ->> 'registrationNo'), '')                 AS tax_id   -- not synced both ways (CRMs lack it)
FROM c;
