-- Schema version 2: full-text search over customers and interaction subjects.
--
-- The index is maintained by the store (db/search.rs), not by triggers: FTS5
-- flushes its buffered terms at every statement savepoint, so a trigger per
-- row makes bulk imports crawl, while one INSERT ... SELECT at the end of an
-- import indexes a million rows in one pass.

CREATE VIRTUAL TABLE customer_search USING fts5 (
    name, emails, phones, organization,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- Relevance: a match in the name weighs most, then emails and phones, then
-- the organization's name. Queries order by the built-in rank column, which
-- lets FTS5 stop early for ORDER BY rank LIMIT n.
INSERT INTO customer_search (customer_search, rank) VALUES ('rank', 'bm25(10.0, 5.0, 5.0, 2.0)');

CREATE VIRTUAL TABLE interaction_search USING fts5 (
    subject,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

-- Index what version 1 already holds.
INSERT INTO customer_search (rowid, name, emails, phones, organization)
SELECT c.rowid, c.name, c.emails, c.phones,
       (SELECT o.name FROM customers o WHERE o.rowid = c.organization_rowid)
FROM customers c;
INSERT INTO interaction_search (rowid, subject)
SELECT rowid, subject FROM interactions WHERE subject IS NOT NULL;
