-- The catalogue's vocabulary, for search (see `crate::search::is_term` and `store::terms`):
-- each term with the titles holding it, in title order, so that the first page of a search
-- is read off an index in order instead of sorting every match; and each term's count, to
-- pick the rarest query word to read.

CREATE TABLE title_terms (
    term     TEXT   NOT NULL,
    -- The title's sort key (kept equal to titles.sort_key): the order of search results.
    sort_key TEXT   NOT NULL,
    title_id BIGINT NOT NULL REFERENCES titles (id),
    PRIMARY KEY (term, sort_key, title_id)
);

CREATE TABLE terms (
    term   TEXT   PRIMARY KEY,
    -- How many titles hold it (rows stay at 0 when the last one is renamed).
    titles BIGINT NOT NULL
);

-- Query words are found inside terms with `LIKE '%word%'`, served by a trigram index.
DO $$
DECLARE
    ext_schema TEXT;
BEGIN
    SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    EXECUTE format('CREATE INDEX terms_trgm ON terms USING gin (term %I.gin_trgm_ops)', ext_schema);
END
$$;

-- The titles already catalogued. The rule is `crate::search::terms`: the distinct words of the
-- search text of at least three characters holding something besides digits and `x`.
INSERT INTO title_terms (term, sort_key, title_id)
SELECT DISTINCT w, t.sort_key, t.id
FROM titles t, regexp_split_to_table(t.search_text, ' ') AS w
WHERE length(w) >= 3 AND w !~ '^[0-9x]+$';

INSERT INTO terms (term, titles)
SELECT term, COUNT(*) FROM title_terms GROUP BY term;
