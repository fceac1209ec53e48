-- Warehouse schema, created idempotently when the file does not record this schema's fingerprint
-- (warehouse/db.py). Raw tables are per source system (see raw.py); everything else is shared. What each
-- connection needs of its own (time zone, temporary macros) is in session.sql.
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE SCHEMA IF NOT EXISTS identity;
CREATE SCHEMA IF NOT EXISTS sync;
CREATE SCHEMA IF NOT EXISTS meta;

CREATE TABLE IF NOT EXISTS meta.currencies (code VARCHAR PRIMARY KEY);

-- Spellings of countries (normalised by country_key) → ISO 3166-1 alpha-2 (warehouse/countries.py).
CREATE TABLE IF NOT EXISTS meta.countries (alias VARCHAR PRIMARY KEY, code VARCHAR NOT NULL);

-- Incremental extraction cursors: the newest source `updated_at` seen per system and entity.
-- When each raw table last changed in content (a re-read of identical records changes nothing): staging is
-- rebuilt only when one of its sources changed since the last build (sync.builds).
CREATE TABLE IF NOT EXISTS sync.raw_changes (
    system      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    PRIMARY KEY (system, entity)
);

-- Every record a landing wrote or removed, in order (seq): staging redoes only these since its last build,
-- then drops the entries it consumed (transform/staging.py).
CREATE SEQUENCE IF NOT EXISTS sync.raw_journal_seq;
CREATE TABLE IF NOT EXISTS sync.raw_journal (
    seq         BIGINT NOT NULL,
    system      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    record_key  VARCHAR NOT NULL
);

-- What each derived table set was last built from, as one fingerprint (sync_pipeline/warehouse/builds.py):
-- staging, each metrics table, each connection's plan. Equal inputs: the tables are kept as they are.
CREATE TABLE IF NOT EXISTS sync.builds (
    name        VARCHAR PRIMARY KEY,
    fingerprint VARCHAR NOT NULL,
    built_at    TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    summary     VARCHAR
);

CREATE TABLE IF NOT EXISTS sync.cursors (
    system      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    cursor_ts   TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    PRIMARY KEY (system, entity)
);

-- Once a source record is bound to an account_id the binding is kept (DESIGN §3): never re-keyed.
CREATE TABLE IF NOT EXISTS identity.account_bindings (
    source_instance VARCHAR NOT NULL,
    source_id       VARCHAR NOT NULL,
    account_id      VARCHAR NOT NULL,
    bound_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source_instance, source_id)
);

CREATE TABLE IF NOT EXISTS staging.accounts (
    account_id        VARCHAR NOT NULL,
    source_instance   VARCHAR NOT NULL,
    source_system     VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    name              VARCHAR,
    tax_id            VARCHAR,
    email             VARCHAR,
    phone             VARCHAR,
    street            VARCHAR,
    city              VARCHAR,
    post_code         VARCHAR,
    country           VARCHAR,
    kind              VARCHAR,
    department        VARCHAR,
    source_updated_at TIMESTAMPTZ,
    country_code      VARCHAR  -- ISO 3166-1 alpha-2 of `country` (kept as typed); NULL when not recognised
);

CREATE TABLE IF NOT EXISTS staging.invoices (
    invoice_key       VARCHAR NOT NULL,
    source_instance   VARCHAR NOT NULL,
    source_id         VARCHAR NOT NULL,
    account_id        VARCHAR NOT NULL,
    number            VARCHAR,
    kind              VARCHAR NOT NULL,
    source_kind       VARCHAR,
    status            VARCHAR NOT NULL,
    source_status     VARCHAR,
    issue_date        DATE NOT NULL,
    due_date          DATE,
    paid_date         DATE,
    currency          VARCHAR NOT NULL,
    total_net         DECIMAL(18, 2),
    total_gross       DECIMAL(18, 2) NOT NULL,
    paid_amount       DECIMAL(18, 2) NOT NULL,
    amount_due        DECIMAL(18, 2) NOT NULL,
    view_url          VARCHAR,
    source_updated_at TIMESTAMPTZ,
    department        VARCHAR             -- the issuing department's id, where the source has departments
);

-- Records that could not be mapped, with the reason and the raw payload. `disposition` is
-- 'rejected' (not staged) or 'kept' (staged under its bound identifier, e.g. identifier drift).
CREATE TABLE IF NOT EXISTS staging.quarantine (
    source_instance VARCHAR NOT NULL,
    entity          VARCHAR NOT NULL,
    record_key      VARCHAR NOT NULL,
    source_id       VARCHAR,
    reason          VARCHAR NOT NULL,
    disposition     VARCHAR NOT NULL,
    payload         JSON,
    first_seen_at   TIMESTAMPTZ,
    run_id          VARCHAR
);

-- Per account and currency, as of a date (DESIGN §4). Rebuilt on every run.
CREATE TABLE IF NOT EXISTS marts.account_metrics (
    account_id            VARCHAR NOT NULL,
    currency              VARCHAR NOT NULL,
    as_of                 DATE NOT NULL,
    invoice_count         INTEGER NOT NULL,
    total_billed_12m      DECIMAL(18, 2) NOT NULL,
    total_paid            DECIMAL(18, 2) NOT NULL,
    total_due             DECIMAL(18, 2) NOT NULL,
    overdue_invoice_count INTEGER NOT NULL,
    overdue_amount        DECIMAL(18, 2) NOT NULL,
    overdue_since         DATE,
    max_days_overdue      INTEGER,
    aging_current         DECIMAL(18, 2) NOT NULL,
    aging_1_30            DECIMAL(18, 2) NOT NULL,
    aging_31_60           DECIMAL(18, 2) NOT NULL,
    aging_61_90           DECIMAL(18, 2) NOT NULL,
    aging_91_plus         DECIMAL(18, 2) NOT NULL,
    billed_90d            DECIMAL(18, 2) NOT NULL,
    dso_90d               DECIMAL(18, 1),
    last_payment_date     DATE
);

-- Value of one unit of `currency` in the reporting currency (loaded from CSV or sync.yaml).
CREATE TABLE IF NOT EXISTS marts.fx_rates (
    currency            VARCHAR NOT NULL,
    reporting_currency  VARCHAR NOT NULL,
    rate                DECIMAL(18, 8) NOT NULL
);

-- The same figures per account rolled up in the reporting currency. Amounts in a currency with no
-- rate are left out (never converted at a guessed rate) and listed in `unconverted_currencies`.
CREATE TABLE IF NOT EXISTS marts.account_metrics_reporting (
    account_id            VARCHAR NOT NULL,
    reporting_currency    VARCHAR NOT NULL,
    as_of                 DATE NOT NULL,
    invoice_count         INTEGER NOT NULL,
    total_billed_12m      DECIMAL(18, 2) NOT NULL,
    total_paid            DECIMAL(18, 2) NOT NULL,
    total_due             DECIMAL(18, 2) NOT NULL,
    overdue_invoice_count INTEGER NOT NULL,
    overdue_amount        DECIMAL(18, 2) NOT NULL,
    overdue_since         DATE,
    max_days_overdue      INTEGER,
    aging_current         DECIMAL(18, 2) NOT NULL,
    aging_1_30            DECIMAL(18, 2) NOT NULL,
    aging_31_60           DECIMAL(18, 2) NOT NULL,
    aging_61_90           DECIMAL(18, 2) NOT NULL,
    aging_91_plus         DECIMAL(18, 2) NOT NULL,
    billed_90d            DECIMAL(18, 2) NOT NULL,
    dso_90d               DECIMAL(18, 1),
    last_payment_date     DATE,
    unconverted_currencies VARCHAR[] NOT NULL
);

CREATE TABLE IF NOT EXISTS marts.financial_health (
    account_id  VARCHAR NOT NULL,
    as_of       DATE NOT NULL,
    score       INTEGER,            -- 0..100; NULL when unknown
    band        VARCHAR NOT NULL,   -- healthy | at_risk | critical | unknown
    reason      VARCHAR NOT NULL
);

-- One row per alert: opened once, open while its rule holds, then resolved (DESIGN §4).
CREATE TABLE IF NOT EXISTS marts.risk_alerts (
    alert_id      VARCHAR NOT NULL,
    account_id    VARCHAR NOT NULL,
    rule          VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    comparison    VARCHAR NOT NULL,
    threshold     DOUBLE NOT NULL,
    severity      VARCHAR NOT NULL,
    value         DOUBLE,
    opened_on     DATE NOT NULL,
    last_seen_on  DATE NOT NULL,
    resolved_on   DATE,
    status        VARCHAR NOT NULL   -- open | resolved
);

-- What each target holds, as far as we wrote it (DESIGN §5).
CREATE TABLE IF NOT EXISTS sync.ledger (
    connection    VARCHAR NOT NULL,
    entity        VARCHAR NOT NULL,
    our_key       VARCHAR NOT NULL,
    target_id     VARCHAR,
    content_hash  VARCHAR,
    target_hash   VARCHAR,
    state         VARCHAR NOT NULL,   -- intended | synced | failed | gone (deleted in the target: never re-created)
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    VARCHAR,
    updated_at    TIMESTAMPTZ NOT NULL,
    run_id        VARCHAR,
    PRIMARY KEY (connection, entity, our_key)
);

-- Every write (and every planned write of a dry run), with the target's answer.
CREATE TABLE IF NOT EXISTS sync.log (
    logged_at   TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR,
    connection  VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    our_key     VARCHAR NOT NULL,
    action      VARCHAR NOT NULL,     -- create | update | adopt | fail | unknown | plan_create | plan_update
    target_id   VARCHAR,
    dry_run     BOOLEAN NOT NULL DEFAULT false,
    message     VARCHAR
);
ALTER TABLE sync.log ADD COLUMN IF NOT EXISTS system VARCHAR;  -- the system written to (two-way: either side)

-- Source customers that cannot be synced: no account identifier, or an identifier that changed after
-- the customer was bound (drift: it keeps its original account). Rebuilt with staging.
CREATE TABLE IF NOT EXISTS identity.unmatched_accounts (
    system           VARCHAR NOT NULL,
    source_id        VARCHAR,
    name             VARCHAR,
    problem          VARCHAR NOT NULL,   -- no_identifier | identifier_drift
    reason           VARCHAR NOT NULL,
    invoices_held    INTEGER NOT NULL,   -- invoices quarantined because of it
    first_seen_at    TIMESTAMPTZ
);

-- Two-way record sync (DESIGN §5a, load/twoway.py). One row per pair of records of a connection's entity:
-- side a is the connection's source, side b its target. a_hash/b_hash: each side's content hash over the
-- mapped fields as last synced (after a write: as the written side answered, so its normalising is no change).
-- state: synced | intended (a write was sent and its answer not recorded yet: `intent` says which).
CREATE TABLE IF NOT EXISTS sync.links (
    connection  VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    our_key     VARCHAR NOT NULL,      -- the key written into the other side's external-id field
    a_id        VARCHAR,
    b_id        VARCHAR,
    a_hash      VARCHAR,
    b_hash      VARCHAR,
    origin      VARCHAR NOT NULL,      -- a | b (created from that side) | matched (paired on first sync)
    state       VARCHAR NOT NULL,
    intent      VARCHAR,               -- create_a | create_b | update_a | update_b while state = intended
    synced_at   TIMESTAMPTZ,
    run_id      VARCHAR,
    PRIMARY KEY (connection, entity, our_key)
);

-- Both sides of a linked record changed since the last sync: the winner was written to the other side,
-- the loser's values are kept here.
CREATE TABLE IF NOT EXISTS sync.conflicts (
    connection   VARCHAR NOT NULL,
    entity       VARCHAR NOT NULL,
    our_key      VARCHAR NOT NULL,
    a_id         VARCHAR,
    b_id         VARCHAR,
    winner       VARCHAR NOT NULL,     -- the system whose values were kept
    a_values     VARCHAR,              -- JSON of the mapped fields on each side, before the write
    b_values     VARCHAR,
    reason       VARCHAR NOT NULL,     -- both_changed | first_pairing
    detected_at  TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR
);

-- Records deleted on one side: flagged once, never propagated (nothing is deleted on the other side).
CREATE TABLE IF NOT EXISTS sync.deletions (
    connection   VARCHAR NOT NULL,
    entity       VARCHAR NOT NULL,
    system       VARCHAR NOT NULL,     -- where the record was deleted
    record_id    VARCHAR NOT NULL,
    other_id     VARCHAR,              -- its counterpart, left as it is
    detected_at  TIMESTAMPTZ NOT NULL,
    run_id       VARCHAR,
    PRIMARY KEY (connection, entity, system, record_id)
);

-- The ids a full key scan of a system's list found (the latest scan only), and when it ran: a record in
-- raw that the scan did not find was deleted at the source.
CREATE TABLE IF NOT EXISTS sync.scans (
    system      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    scanned_at  TIMESTAMPTZ NOT NULL,
    keys_found  BIGINT NOT NULL,
    run_id      VARCHAR,
    PRIMARY KEY (system, entity)
);
CREATE TABLE IF NOT EXISTS sync.scan_keys (
    system      VARCHAR NOT NULL,
    entity      VARCHAR NOT NULL,
    record_key  VARCHAR NOT NULL
);

-- The user pairing report of a connection (load/user_pairing.py): users of its two systems paired by identical
-- login and e-mail. Side a is the connection's source, side b its target. Rebuilt per connection on each run.
CREATE TABLE IF NOT EXISTS sync.user_pairing (
    connection  VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,     -- paired | unpaired
    difference  VARCHAR,              -- login | email | only_in_<system>; NULL when paired
    a_system    VARCHAR NOT NULL,
    a_id        VARCHAR,
    a_login     VARCHAR,
    a_email     VARCHAR,
    a_name      VARCHAR,
    b_system    VARCHAR NOT NULL,
    b_id        VARCHAR,
    b_login     VARCHAR,
    b_email     VARCHAR,
    b_name      VARCHAR,
    checked_at  TIMESTAMPTZ NOT NULL,
    run_id      VARCHAR
);
