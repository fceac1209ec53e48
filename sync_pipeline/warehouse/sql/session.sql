-- What every connection to the warehouse needs for itself, on every open (schema.sql is the file's own).
SET TimeZone = 'UTC';  -- every timestamp the pipeline reasons about is UTC

-- A value quoted in a quarantine reason: at most 40 characters of it, and its length when cut (a record
-- may carry a 1 MB "number"; the reason must stay readable).
CREATE OR REPLACE TEMP MACRO quote_value(x) AS
    '''' || left(x, 40) || CASE WHEN length(x) > 40 THEN '…'' (' || length(x) || ' characters)' ELSE '''' END;
