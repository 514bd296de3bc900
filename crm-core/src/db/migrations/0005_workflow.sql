-- Schema version 5: lifecycle stages and their transitions, pipelines, deals,
-- tasks, assignment teams and rules.

-- Configuration of the store that is read whole, as JSON: the lifecycle
-- stages ('lifecycle').
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The rule whose action made a change; NULL for changes made by a caller.
ALTER TABLE changes ADD COLUMN rule TEXT;

-- Every lifecycle transition of every customer. A customer's first row has
-- no from_stage (the stage it was created in).
CREATE TABLE stage_transitions (
    rowid          INTEGER PRIMARY KEY,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    from_stage     TEXT,
    to_stage       TEXT    NOT NULL,
    at             INTEGER NOT NULL,
    cause          TEXT    NOT NULL CHECK (cause IN ('manual', 'import', 'rule', 'upgrade')),
    rule           TEXT,
    note           TEXT,
    CHECK ((cause = 'rule') = (rule IS NOT NULL))
);
CREATE INDEX stage_transitions_customer ON stage_transitions (customer_rowid, at);
CREATE INDEX stage_transitions_at ON stage_transitions (at, to_stage);
-- Customers stored before transitions were recorded: their current stage,
-- entered (as far as is known) when they were created.
INSERT INTO stage_transitions (customer_rowid, from_stage, to_stage, at, cause)
    SELECT rowid, NULL, lifecycle_stage, created_at, 'upgrade' FROM customers ORDER BY rowid;

CREATE TABLE pipelines (
    rowid      INTEGER PRIMARY KEY,
    id         BLOB    NOT NULL UNIQUE,
    name       TEXT    NOT NULL UNIQUE,
    currency   TEXT    NOT NULL,
    stages     TEXT    NOT NULL,  -- JSON: [{name, probability, closed, won}]
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE deals (
    rowid              INTEGER PRIMARY KEY,
    id                 BLOB    NOT NULL UNIQUE,
    pipeline_rowid     INTEGER NOT NULL REFERENCES pipelines (rowid),
    title              TEXT    NOT NULL,
    stage              TEXT    NOT NULL,
    value_minor        INTEGER NOT NULL,
    currency           TEXT    NOT NULL,
    probability        INTEGER,  -- percent; NULL: the stage's default
    owner              TEXT,
    expected_close     TEXT,     -- YYYY-MM-DD
    customer_rowid     INTEGER REFERENCES customers (rowid) ON DELETE SET NULL,
    organization_rowid INTEGER REFERENCES customers (rowid) ON DELETE SET NULL,
    status             TEXT    NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    close_reason       TEXT,
    closed_at          INTEGER,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);
CREATE INDEX deals_pipeline ON deals (pipeline_rowid, status, stage);
CREATE INDEX deals_customer ON deals (customer_rowid) WHERE customer_rowid IS NOT NULL;
CREATE INDEX deals_organization ON deals (organization_rowid) WHERE organization_rowid IS NOT NULL;
CREATE INDEX deals_owner ON deals (owner, status) WHERE owner IS NOT NULL;

CREATE TABLE deal_stage_history (
    rowid      INTEGER PRIMARY KEY,
    deal_rowid INTEGER NOT NULL REFERENCES deals (rowid) ON DELETE CASCADE,
    from_stage TEXT,
    to_stage   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    reason     TEXT,     -- given with the move (why a deal was lost)
    rule       TEXT
);
CREATE INDEX deal_stage_history_deal ON deal_stage_history (deal_rowid, at);

CREATE TABLE tasks (
    rowid          INTEGER PRIMARY KEY,
    id             BLOB    NOT NULL UNIQUE,
    title          TEXT    NOT NULL,
    notes          TEXT,
    owner          TEXT,
    due_at         INTEGER,
    priority       TEXT    NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status         TEXT    NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    customer_rowid INTEGER REFERENCES customers (rowid) ON DELETE CASCADE,
    deal_rowid     INTEGER REFERENCES deals (rowid) ON DELETE CASCADE,
    rule           TEXT,     -- the rule that created it
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    completed_at   INTEGER
);
CREATE INDEX tasks_open_due ON tasks (due_at) WHERE status = 'open';
CREATE INDEX tasks_owner ON tasks (owner, status) WHERE owner IS NOT NULL;
CREATE INDEX tasks_customer ON tasks (customer_rowid) WHERE customer_rowid IS NOT NULL;
CREATE INDEX tasks_deal ON tasks (deal_rowid) WHERE deal_rowid IS NOT NULL;

-- Who assignment rules hand work to. members: JSON [{name, capacity, out}];
-- last_assigned: where round-robin resumes.
CREATE TABLE teams (
    name          TEXT    PRIMARY KEY,
    members       TEXT    NOT NULL,
    last_assigned TEXT,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE rules (
    rowid      INTEGER PRIMARY KEY,
    id         BLOB    NOT NULL UNIQUE,
    name       TEXT    NOT NULL UNIQUE,
    version    INTEGER NOT NULL,
    enabled    INTEGER NOT NULL,
    definition TEXT    NOT NULL,  -- JSON: trigger, condition, actions
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every version a rule has had.
CREATE TABLE rule_versions (
    rule_rowid INTEGER NOT NULL REFERENCES rules (rowid) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    definition TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (rule_rowid, version)
) WITHOUT ROWID;

-- Scheduled rules: the customers the condition held for at the last sweep.
-- A sweep acts on those who newly match, once.
CREATE TABLE rule_matches (
    rule_rowid     INTEGER NOT NULL REFERENCES rules (rowid) ON DELETE CASCADE,
    customer_rowid INTEGER NOT NULL REFERENCES customers (rowid) ON DELETE CASCADE,
    PRIMARY KEY (rule_rowid, customer_rowid)
) WITHOUT ROWID;
CREATE INDEX rule_matches_customer ON rule_matches (customer_rowid);

-- What each rule did, with why: the explanation behind an assignment.
CREATE TABLE rule_effects (
    rowid        INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    rule         TEXT    NOT NULL,
    rule_version INTEGER NOT NULL,
    entity       TEXT    NOT NULL,
    entity_id    BLOB    NOT NULL,
    action       TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX rule_effects_entity ON rule_effects (entity_id);
CREATE INDEX rule_effects_rule ON rule_effects (rule);
