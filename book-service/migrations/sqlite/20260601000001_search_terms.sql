-- The catalogue's vocabulary, for search (same meaning as migrations/postgres): each term with
-- the titles holding it, in title order, and each term's count.

CREATE TABLE title_terms (
    term     TEXT    NOT NULL,
    sort_key TEXT    NOT NULL,
    title_id INTEGER NOT NULL REFERENCES titles (id),
    PRIMARY KEY (term, sort_key, title_id)
) WITHOUT ROWID;

CREATE TABLE terms (
    id     INTEGER PRIMARY KEY,
    term   TEXT    NOT NULL UNIQUE,
    titles INTEGER NOT NULL
);

-- Query words are found inside terms through an FTS5 trigram index, kept in step by a trigger
-- (a term's text never changes and its row is never deleted: only its count moves).
CREATE VIRTUAL TABLE terms_fts USING fts5(term, content = 'terms', content_rowid = 'id', tokenize = 'trigram');
CREATE TRIGGER terms_fts_insert AFTER INSERT ON terms BEGIN
    INSERT INTO terms_fts (rowid, term) VALUES (new.id, new.term);
END;

-- The titles already catalogued. The rule is `crate::search::terms`: the distinct words of the
-- search text of at least three characters holding something besides digits and `x`.
WITH RECURSIVE split (title_id, sort_key, word, rest) AS (
    SELECT id, sort_key, '', search_text || ' ' FROM titles
    UNION ALL
    SELECT title_id, sort_key, substr(rest, 1, instr(rest, ' ') - 1), substr(rest, instr(rest, ' ') + 1)
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO title_terms (term, sort_key, title_id)
SELECT word, sort_key, title_id FROM split
WHERE length(word) >= 3 AND word GLOB '*[^0-9x]*';

INSERT INTO terms (term, titles)
SELECT term, COUNT(*) FROM title_terms GROUP BY term;
