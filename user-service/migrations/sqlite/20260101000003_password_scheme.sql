-- The scheme each password hash was made with ('bcrypt', 'bcrypt-sha256'), so that a
-- candidate is checked only the way its hash was made (see src/password.rs). NULL: a row from
-- before the record (the original app's passlib hashes, or older rows of this platform),
-- checked by the legacy rules and re-hashed at its next login.
ALTER TABLE users ADD COLUMN password_scheme VARCHAR;
