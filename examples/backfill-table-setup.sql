-- The table examples/backfill-table.yaml backfills: 20,000 users whose email_lower is not set yet.
-- Re-running it starts the example over (drops and re-creates the table).
DROP TABLE IF EXISTS demo_users;
CREATE TABLE demo_users (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    email_lower text  -- the new column the backfill fills in
);
INSERT INTO demo_users (id, email)
SELECT g, 'User' || g || '@Example.COM' FROM generate_series(1, 20000) AS g;
