-- A constant default is stored once (PostgreSQL 11+): no table rewrite.
SET lock_timeout = '2s';

ALTER TABLE accounts ADD COLUMN IF NOT EXISTS plan text DEFAULT 'free';
