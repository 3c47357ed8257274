"""A commented example document for every kind and version (`opsctl schema KIND --example`).

Each one validates as it is printed (tests/contracts/test_examples.py parses every one with
the real parser) and names every field of its spec, the optional ones commented out where
they would change the meaning (a MigrateSchema takes migrations or a directory, not both).
"""

from __future__ import annotations

from contracts import kinds

_METADATA = """\
metadata:
  environment: {environment}  # the worker's policy for it governs the run (built-in: dev | staging | prod)
  idempotencyKey: {key}  # optional: same key, same run (default: the spec's hash)
  # requester: alice   # optional: filled from your identity (must match it); you sign the request
  # approvalTimeoutSeconds: 3600  # optional: shortens, never lengthens, the policy's deadline
  labels: {{ticket: {key}}}  # optional: free-form, shown with the run
"""


def _header(kind: str, api_version: str, environment: str, key: str, about: str) -> str:
    lines = [f"# {line}" if line else "#" for line in about.splitlines()]
    envelope = f"apiVersion: {api_version}\nkind: {kind}\n"
    return "\n".join(lines) + "\n" + envelope + _METADATA.format(environment=environment, key=key)


EXAMPLES: dict[tuple[str, str], str] = {
    ("RotateDbCredential", kinds.V1): _header(
        "RotateDbCredential",
        kinds.V1,
        "prod",
        "CHG-1001",
        "Rotate a PostgreSQL role's password through its Secrets Manager secret.\n"
        "prod: a second person approves the plan hash before anything changes.",
    )
    + """\
spec:
  database: app            # logical name; the worker's settings resolve it to a DSN and admin credentials
  role: app_user           # the PostgreSQL role whose password rotates
  secretId: demo/app_user  # the secret (name or ARN) holding the role's credentials
""",
    ("CreateReadReplica", kinds.V1): _header(
        "CreateReadReplica",
        kinds.V1,
        "prod",
        "CHG-2001",
        "Create an RDS read replica of an instance, or adopt the one this request made before.",
    )
    + """\
spec:
  sourceInstanceId: orders-db      # the RDS instance to replicate (read, never modified)
  instanceClass: db.t3.medium      # the replica's class
  availabilityZone: us-east-1b     # optional: omit to let RDS choose
  # replicaInstanceId: orders-db-ro  # optional: default orders-db-replica-<hash of source, class and AZ>
  convergenceTimeoutSeconds: 3600  # optional: how long verify waits for `available` before asking for review
""",
    ("MigrateSchema", kinds.V1): _header(
        "MigrateSchema",
        kinds.V1,
        "dev",
        "migrate-shop-1",
        "Apply ordered SQL migrations to one schema; each is linted, then recorded in the schema's ledger.",
    )
    + """\
spec:
  database: app
  schemaName: shop             # optional: default public
  migrations:                  # inline, in version order (or: `directory: migrations`, not both)
    - version: 0001_accounts
      sql: |
        CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, email text NOT NULL);
  # directory: migrations      # a folder of NNNN_name.sql files next to this document; the CLI inlines it
  acknowledge: []              # unsafe lint findings accepted on purpose: {version, rule, reason}
  lockTimeoutSeconds: 5        # optional: lock_timeout of every migration
  statementTimeoutSeconds: 60  # optional: statement_timeout of every statement
""",
    ("SweepStaleVolumes", kinds.V1): _header(
        "SweepStaleVolumes",
        kinds.V1,
        "dev",
        "sweep-1",
        "DEPRECATED: opsctl/v1 stops being accepted on "
        f"{kinds.SWEEP_V1_STOPS:%Y-%m-%d}; `opsctl convert -f DOC` prints it as opsctl/v2.\n"
        "Delete unattached EBS volumes older than N days, in batches.",
    )
    + """\
spec:
  olderThanDays: 30       # only volumes created more than this many days ago
  keepTag: keep           # optional: volumes carrying this tag key are never swept
  tagFilters:             # optional: only volumes carrying all these tags
    team: data
  snapshotFirst: true     # optional: snapshot each volume before deleting it
  batchSize: 100          # optional: volumes per apply step
  concurrency: 8          # optional: deletions in flight at once within a step
""",
    ("SweepStaleVolumes", kinds.V2): _header(
        "SweepStaleVolumes",
        kinds.V2,
        "dev",
        "sweep-1",
        "Delete unattached EBS volumes older than N days, in batches.",
    )
    + """\
spec:
  selector:               # which volumes are candidates (attached ones never are)
    olderThanDays: 30     # only volumes created more than this many days ago
    tags:                 # optional: only volumes carrying all these tags
      team: data
    excludeTags:          # optional (default [keep]): volumes carrying any of these tag keys are never swept
      - keep
      - retain
  snapshotFirst: true     # optional: snapshot each volume before deleting it
  batchSize: 100          # optional: volumes per apply step
  concurrency: 8          # optional: deletions in flight at once within a step
""",
    ("BackfillTable", kinds.V1): _header(
        "BackfillTable",
        kinds.V1,
        "dev",
        "backfill-1",
        "Set one column to an expression, batch by batch over the key range, throttled and resumable.",
    )
    + """\
spec:
  database: app
  table: users                     # or schema-qualified: app.users
  keyColumn: id                    # walked in order; must lead a btree index (e.g. the primary key)
  setColumn: email_lower
  expression: lower(email)         # one SQL expression for the new value
  predicate: email_lower IS NULL   # the rows still to backfill; the update must make it false
  batchSize: 1000                  # optional: rows per batch (one short transaction)
  maxRowsPerSecond: 5000           # optional: average rate limit
  guard:                           # optional: pause while a one-number query is over maxValue
    query: SELECT coalesce(max(extract(epoch FROM replay_lag)), 0) FROM pg_stat_replication
    maxValue: 5
    pollSeconds: 5                 # optional: how often a paused backfill looks again
    maxPauseSeconds: 3600          # optional: a longer pause fails the attempt (its retry resumes)
""",
}


def example(kind: str, api_version: str | None = None) -> str:
    """The commented example document of `kind` at `api_version` (default: the latest)."""
    return EXAMPLES[(kind, api_version or kinds.latest(kind))]
