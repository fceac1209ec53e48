-- Billy contacts → the shared _clients shape (see identity.sql) for one instance. Placeholders: {clients} (raw table),
-- {instance} (quoted literal). A company or a person (`type`); e-mail is no contact field in Billy, it is the primary
-- contact person's (embedded as contactPersons) [O]; registrationNo is the CVR/VAT number.
CREATE OR REPLACE TEMP TABLE _clients AS
WITH c AS (
    SELECT record_key, source_id, payload, source_updated_at,
           CAST(coalesce(payload -> 'contactPersons', '[]') AS JSON[]) AS persons
    FROM {clients}
), p AS (
    SELECT *, coalesce(list_filter(persons, lambda x: (x ->> 'isPrimary') = 'true')[1], persons[1]) AS person
    FROM c
)
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       'no id'                                                        AS missing_identifier,
       CAST(NULL AS VARCHAR)                                          AS ref_key,  -- Billy contacts have no external id
       nullif(trim(payload ->> 'name'), '')                           AS name,
       nullif(trim(payload ->> 'registrationNo'), '')                 AS tax_id,
       nullif(trim(person ->> 'email'), '')                           AS email,
       nullif(trim(payload ->> 'phone'), '')                          AS phone,
       nullif(trim(payload ->> 'street'), '')                         AS street,
       nullif(trim(payload ->> 'cityText'), '')                       AS city,
       nullif(trim(payload ->> 'zipcodeText'), '')                    AS post_code,
       nullif(upper(trim(payload ->> 'countryId')), '')               AS country,
       CASE WHEN payload ->> 'type' = 'person' THEN 'person' ELSE 'company' END AS kind,
       CAST(NULL AS VARCHAR)                                          AS department
FROM p;
