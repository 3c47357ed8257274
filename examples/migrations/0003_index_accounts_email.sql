-- CONCURRENTLY runs outside a transaction, so this migration holds this one statement only.
SET lock_timeout = '2s';

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_key ON accounts (email);
