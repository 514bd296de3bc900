-- Schema version 3: segments, and what makes filter expressions fast.
--
-- Derived tables (customer_tags, interaction_stats, consent_current,
-- currencies_used) are kept up to date by the store in the transaction of
-- every write; they are filled here from the existing rows.

-- One row per tag of a customer: "vip" in tags is an index lookup.
CREATE TABLE customer_tags (
    tag            TEXT    NOT NULL,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    PRIMARY KEY (tag, customer_rowid)
) WITHOUT ROWID;
CREATE INDEX customer_tags_customer ON customer_tags (customer_rowid);
INSERT INTO customer_tags (tag, customer_rowid)
    SELECT DISTINCT t.value, c.rowid FROM customers c, json_each(c.tags) t;

CREATE INDEX customers_country ON customers (country) WHERE country IS NOT NULL;
CREATE INDEX customers_lifecycle_stage ON customers (lifecycle_stage);

-- Per customer, kind and currency: totals over all time, so that unwindowed
-- aggregates (count(purchases), days_since(last purchase)) cost one row per
-- customer rather than one per interaction.
CREATE TABLE interaction_stats (
    kind           TEXT    NOT NULL,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    currency       TEXT    NOT NULL,  -- '' when none
    n              INTEGER NOT NULL,
    amount_minor   INTEGER NOT NULL,  -- sum over the rows with an amount
    amount_n       INTEGER NOT NULL,
    quantity       INTEGER NOT NULL,
    quantity_n     INTEGER NOT NULL,
    score          INTEGER NOT NULL,
    score_n        INTEGER NOT NULL,
    first_at       INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    PRIMARY KEY (kind, customer_rowid, currency)
) WITHOUT ROWID;
CREATE INDEX interaction_stats_customer ON interaction_stats (customer_rowid);
INSERT INTO interaction_stats
    SELECT kind, customer_rowid, coalesce(currency, ''), count(*),
           coalesce(sum(amount_minor), 0), count(amount_minor),
           coalesce(sum(quantity), 0), count(quantity),
           coalesce(sum(score), 0), count(score),
           min(occurred_at), max(occurred_at)
    FROM interactions GROUP BY kind, customer_rowid, coalesce(currency, '');

-- Windowed aggregates (count(purchases within 90d)) read this index alone.
CREATE INDEX interactions_kind_time
    ON interactions (kind, occurred_at, customer_rowid, amount_minor, currency);

-- The currencies that occur, so that amounts are scaled to major units by
-- the exponents actually in use.
CREATE TABLE currencies_used (code TEXT PRIMARY KEY) WITHOUT ROWID;
INSERT INTO currencies_used SELECT DISTINCT currency FROM interactions WHERE currency IS NOT NULL;

-- The answer of the consent ledger per customer, purpose and channel
-- ('' covers every channel): the latest record.
CREATE TABLE consent_current (
    purpose        TEXT    NOT NULL,
    channel        TEXT    NOT NULL,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    status         TEXT    NOT NULL,
    recorded_at    INTEGER NOT NULL,
    consent_rowid  INTEGER NOT NULL,
    PRIMARY KEY (purpose, channel, customer_rowid)
) WITHOUT ROWID;
CREATE INDEX consent_current_customer ON consent_current (customer_rowid);
INSERT INTO consent_current
    SELECT purpose, coalesce(channel, ''), customer_rowid, status, recorded_at, rowid
    FROM (SELECT k.*, row_number() OVER (
              PARTITION BY customer_rowid, purpose, coalesce(channel, '')
              ORDER BY recorded_at DESC, rowid DESC) AS latest
          FROM consents k)
    WHERE latest = 1;

CREATE TABLE segments (
    rowid        INTEGER PRIMARY KEY,
    id           BLOB    NOT NULL UNIQUE,
    name         TEXT    NOT NULL UNIQUE,
    description  TEXT,
    kind         TEXT    NOT NULL CHECK (kind IN ('dynamic', 'static')),
    expression   TEXT,   -- canonical text; dynamic segments only
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    evaluated_at INTEGER, -- last materialization of a dynamic segment
    CHECK ((kind = 'dynamic') = (expression IS NOT NULL))
);

-- Static segments: the members. Dynamic ones: the membership at the last
-- materialization.
CREATE TABLE segment_members (
    segment_rowid  INTEGER NOT NULL REFERENCES segments (rowid) ON DELETE CASCADE,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    added_at       INTEGER NOT NULL,
    PRIMARY KEY (segment_rowid, customer_rowid)
) WITHOUT ROWID;
CREATE INDEX segment_members_customer ON segment_members (customer_rowid);

-- Which segments an expression names with in_segment(): refuses deleting a
-- segment others use, and finds them when one is renamed.
CREATE TABLE segment_dependencies (
    segment_rowid INTEGER NOT NULL REFERENCES segments (rowid) ON DELETE CASCADE,
    uses_rowid    INTEGER NOT NULL REFERENCES segments (rowid),
    PRIMARY KEY (segment_rowid, uses_rowid)
) WITHOUT ROWID;
CREATE INDEX segment_dependencies_uses ON segment_dependencies (uses_rowid);
