-- Schema version 4: stored analytics scores.
--
-- `customer_scores` holds the per-customer results of the latest
-- `Crm::compute_scores` run (one row per customer with a purchase);
-- `score_runs` describes that run (options, fitted models, counts). Both are
-- replaced whole by each run, in one transaction.

CREATE TABLE customer_scores (
    customer_rowid     INTEGER PRIMARY KEY REFERENCES customers (rowid) ON DELETE CASCADE,
    frequency          REAL    NOT NULL,  -- repeat purchase periods
    recency            REAL    NOT NULL,  -- first to last purchase, in periods
    t                  REAL    NOT NULL,  -- first purchase to observation end
    monetary_value     REAL    NOT NULL,  -- mean repeat purchase, major units
    total_minor        INTEGER NOT NULL,  -- everything spent, minor units
    rfm_r              INTEGER NOT NULL,
    rfm_f              INTEGER NOT NULL,
    rfm_m              INTEGER NOT NULL,
    rfm_segment        TEXT    NOT NULL,
    p_alive            REAL    NOT NULL,
    expected_purchases REAL    NOT NULL,  -- over the run's horizon
    expected_value     REAL    NOT NULL,  -- expected order value, major units
    clv                REAL    NOT NULL   -- major units, discounted
);

CREATE TABLE score_runs (
    id          INTEGER PRIMARY KEY CHECK (id = 1),  -- only the latest run
    computed_at INTEGER NOT NULL,
    run         TEXT    NOT NULL                     -- JSON: ScoreRun
);

-- Purchases in customer order with their time and amount, read from the
-- index alone: the transaction summary streams them, one customer at a time.
CREATE INDEX interactions_kind_customer
    ON interactions (kind, customer_rowid, occurred_at, amount_minor, currency);
