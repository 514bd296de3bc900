-- Schema version 2: full-text search over customers and interaction subjects,
-- kept in sync by triggers so that no write path can forget it.

CREATE VIRTUAL TABLE customer_search USING fts5 (
    name, emails, phones, organization,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE VIRTUAL TABLE interaction_search USING fts5 (
    subject,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2 3'
);

CREATE TRIGGER customers_search_insert AFTER INSERT ON customers BEGIN
    INSERT INTO customer_search (rowid, name, emails, phones, organization)
    VALUES (new.rowid, new.name, new.emails, new.phones,
            (SELECT o.name FROM customers o WHERE o.rowid = new.organization_rowid));
END;

CREATE TRIGGER customers_search_update
AFTER UPDATE OF name, emails, phones, organization_rowid ON customers BEGIN
    DELETE FROM customer_search WHERE rowid = old.rowid;
    INSERT INTO customer_search (rowid, name, emails, phones, organization)
    VALUES (new.rowid, new.name, new.emails, new.phones,
            (SELECT o.name FROM customers o WHERE o.rowid = new.organization_rowid));
    -- An organization's new name must be found through its people too.
    UPDATE customer_search SET organization = new.name
    WHERE new.kind = 'organization' AND old.name IS NOT new.name
      AND rowid IN (SELECT p.rowid FROM customers p WHERE p.organization_rowid = new.rowid);
END;

CREATE TRIGGER customers_search_delete AFTER DELETE ON customers BEGIN
    DELETE FROM customer_search WHERE rowid = old.rowid;
END;

CREATE TRIGGER interactions_search_insert AFTER INSERT ON interactions
WHEN new.subject IS NOT NULL BEGIN
    INSERT INTO interaction_search (rowid, subject) VALUES (new.rowid, new.subject);
END;

CREATE TRIGGER interactions_search_update AFTER UPDATE OF subject ON interactions BEGIN
    DELETE FROM interaction_search WHERE rowid = old.rowid;
    INSERT INTO interaction_search (rowid, subject)
    SELECT new.rowid, new.subject WHERE new.subject IS NOT NULL;
END;

CREATE TRIGGER interactions_search_delete AFTER DELETE ON interactions
WHEN old.subject IS NOT NULL BEGIN
    DELETE FROM interaction_search WHERE rowid = old.rowid;
END;

-- Index what version 1 already holds.
INSERT INTO customer_search (rowid, name, emails, phones, organization)
SELECT c.rowid, c.name, c.emails, c.phones,
       (SELECT o.name FROM customers o WHERE o.rowid = c.organization_rowid)
FROM customers c;
INSERT INTO interaction_search (rowid, subject)
SELECT rowid, subject FROM interactions WHERE subject IS NOT NULL;
