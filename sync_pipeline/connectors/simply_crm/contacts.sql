-- Simply CRM Contacts as one side of the two-way contact sync (load/entities.py). Placeholders: {raw}, {instance}.
-- The name is first and last name as one (Billy keeps one name); the writer splits it at the last space.
CREATE OR REPLACE TEMP TABLE _rows AS
SELECT record_key, source_id, payload, source_updated_at,
       {instance} || ':' || source_id                                 AS derived_id,
       CAST(NULL AS VARCHAR)                                          AS ref_key,
       nullif(trim(concat_ws(' ', nullif(trim(payload ->> 'firstname'), ''), nullif(trim(payload ->> 'lastname'), ''))),
              '')                                                     AS name,
       nullif(trim(payload ->> 'email'), '')                          AS email,
       coalesce(nullif(trim(payload ->> 'phone'), ''), nullif(trim(payload ->> 'mobile'), '')) AS phone,
       nullif(trim(payload ->> 'mailingstreet'), '')                  AS street,
       nullif(trim(payload ->> 'mailingcity'), '')                    AS city,
       nullif(trim(payload ->> 'mailingzip'), '')                     AS post_code,
       coalesce((SELECT code FROM meta.countries WHERE alias = lower(trim(payload ->> 'mailingcountry'))),
                nullif(trim(payload ->> 'mailingcountry'), ''))       AS country
FROM {raw};
