-- Moves on whenever the set of terms some title holds changes (a term appears, or its last
-- title leaves it). Searches keep their vocabulary lookups in memory and check, with the page
-- they read, that it has not moved since (`store::terms::Vocabulary`).
CREATE TABLE terms_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT  NOT NULL
);
INSERT INTO terms_generation (id, n) VALUES (1, 0);
