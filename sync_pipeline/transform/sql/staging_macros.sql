-- Helpers every vendor's staging SQL uses; created on the connection before each rebuild.

-- A source date as DATE; NULL when it is no date or lies outside 1900..2199: DuckDB reads '99999-01-01'
-- and '-0001-01-01' as dates, but no invoice was issued, due or paid then.
CREATE OR REPLACE TEMP MACRO source_date(t) AS
    CASE WHEN TRY_CAST(t AS DATE) BETWEEN DATE '1900-01-01' AND DATE '2199-12-31' THEN TRY_CAST(t AS DATE) END;

-- Whether a stored JSON value is an object, from its first character (valid JSON: `{` starts only an object),
-- without parsing the whole document as json_type would.
CREATE OR REPLACE TEMP MACRO is_json_object(j) AS
    left(ltrim(CAST(j AS VARCHAR), ' ' || chr(9) || chr(10) || chr(13)), 1) = '{';

-- What a JSON value is, in words.
CREATE OR REPLACE TEMP MACRO json_kind(j) AS
    CASE json_type(j) WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null'
                      WHEN 'ARRAY' THEN 'list' WHEN 'OBJECT' THEN 'object' ELSE 'number' END;

-- What no name or document number holds: control characters, U+FFFD (what an undecodable byte or a lone
-- surrogate became), and the bidirectional embedding, override and isolate controls, which make text show
-- other than it reads (natural right-to-left text needs none of them); nor is it 500 characters long.
CREATE OR REPLACE TEMP MACRO text_problem(what, x) AS
    CASE WHEN regexp_matches(x, '[[:cntrl:]\x{FFFD}\x{202A}-\x{202E}\x{2066}-\x{2069}]')
         THEN 'control or invalid characters in ' || what || ' '
              || quote_value(regexp_replace(x, '[[:cntrl:]\x{FFFD}\x{202A}-\x{202E}\x{2066}-\x{2069}]', '?', 'g'))
         WHEN length(x) > 500 THEN what || ' too long: ' || quote_value(x) END;

-- The matching key of a typed country (meta.countries.alias): no accents, no dots, single spaces, lower
-- case; warehouse/countries.py normalises the aliases the same way.
CREATE OR REPLACE TEMP MACRO country_key(t) AS
    lower(trim(regexp_replace(strip_accents(replace(t, '.', '')), '\s+', ' ', 'g')));
