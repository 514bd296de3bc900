-- Schema version 1: customers, interactions, consent, attribute definitions
-- and the change log.
--
-- Ids are 16-byte UUIDv7 blobs; every table also has an integer rowid that
-- foreign keys use (smaller indexes, faster joins). Times are integer
-- microseconds since the Unix epoch, UTC. Lists and maps that are read whole
-- are JSON text.

CREATE TABLE customers (
    rowid              INTEGER PRIMARY KEY,
    id                 BLOB    NOT NULL,
    kind               TEXT    NOT NULL CHECK (kind IN ('person', 'organization')),
    external_id        TEXT,
    name               TEXT    NOT NULL,
    first_name         TEXT,
    last_name          TEXT,
    organization_rowid INTEGER REFERENCES customers (rowid) ON DELETE SET NULL,
    emails             TEXT    NOT NULL DEFAULT '[]',
    phones             TEXT    NOT NULL DEFAULT '[]',
    addresses          TEXT    NOT NULL DEFAULT '[]',
    birth_date         TEXT,
    locale             TEXT,
    country            TEXT,
    tags               TEXT    NOT NULL DEFAULT '[]',
    attributes         TEXT    NOT NULL DEFAULT '{}',
    lifecycle_stage    TEXT    NOT NULL,
    owner              TEXT,
    source             TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX customers_id ON customers (id);
CREATE UNIQUE INDEX customers_external_id ON customers (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX customers_organization ON customers (organization_rowid) WHERE organization_rowid IS NOT NULL;
CREATE INDEX customers_name ON customers (name COLLATE NOCASE);
CREATE INDEX customers_updated_at ON customers (updated_at);

-- One row per email: makes an email unique across customers and finds a
-- customer by any of their emails.
CREATE TABLE customer_emails (
    email          TEXT    PRIMARY KEY,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX customer_emails_customer ON customer_emails (customer_rowid);

-- The type of each custom attribute key, fixed by its first use or declared.
CREATE TABLE attribute_definitions (
    key        TEXT    PRIMARY KEY,
    type       TEXT    NOT NULL CHECK (type IN ('text', 'number', 'bool', 'date')),
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE interactions (
    rowid          INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    channel        TEXT,
    direction      TEXT CHECK (direction IN ('inbound', 'outbound')),
    occurred_at    INTEGER NOT NULL,
    subject        TEXT,
    body           TEXT,
    amount_minor   INTEGER,
    currency       TEXT,
    product        TEXT,
    quantity       INTEGER,
    score          INTEGER,
    metadata       TEXT,
    created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX interactions_id ON interactions (id);
-- Serves the foreign key and the timeline (newest first).
CREATE INDEX interactions_customer_time ON interactions (customer_rowid, occurred_at);

-- The consent ledger: append-only.
CREATE TABLE consents (
    rowid          INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    purpose        TEXT    NOT NULL,
    channel        TEXT,
    status         TEXT    NOT NULL CHECK (status IN ('granted', 'denied', 'withdrawn')),
    legal_basis    TEXT,
    source         TEXT,
    proof          TEXT,
    recorded_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX consents_id ON consents (id);
CREATE INDEX consents_customer_purpose ON consents (customer_rowid, purpose, recorded_at);

-- Every mutation, in the transaction that made it: audit trail and change feed.
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    entity    TEXT    NOT NULL,
    entity_id BLOB    NOT NULL,
    op        TEXT    NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    fields    TEXT,
    actor     TEXT,
    source    TEXT
);
CREATE INDEX changes_entity ON changes (entity_id);
