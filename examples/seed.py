"""Seed the embedded stack with what the examples act on: `.venv/bin/python examples/seed.py WHAT`.

  rotation            role app_user in database app, its secret demo/app_user
  volumes [COUNT]     COUNT stale EBS volumes tagged purpose=opsctl-example (+1 tagged keep)
  rds-source [NAME]   an RDS instance to replicate (default orders-db)
  backfill-table      table demo_users with 20,000 rows to backfill (examples/backfill-table-setup.sql)

Reads the stack's ports from its state folder (--state-dir, default .opsctl).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere in the repo

from client.devstack import Stack, seed_role

EXAMPLES = Path(__file__).resolve().parent


def seed_volumes(stack: Stack, count: int) -> str:
    ec2 = stack.aws("ec2")

    def create(tags: dict[str, str]) -> str:
        spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return str(ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, TagSpecifications=spec)["VolumeId"])

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: create({"purpose": "opsctl-example"}), range(count)))
    create({"purpose": "opsctl-example", "keep": "yes"})
    return f"created {len(made)} stale volumes and 1 to keep (tag purpose=opsctl-example)"


def seed_rds_source(stack: Stack, name: str) -> str:
    stack.aws("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="app",
        MasterUserPassword="example-only-1",  # moto never runs this instance
        AllocatedStorage=20,
    )
    return f"created RDS instance {name}"


def seed_backfill_table(stack: Stack) -> str:
    stack.psql((EXAMPLES / "backfill-table-setup.sql").read_text())
    return "created table demo_users in database app"


def seed_rotation(stack: Stack) -> str:
    seed_role(stack, "app_user", "demo/app_user")
    return "created role app_user and secret demo/app_user"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["rotation", "volumes", "rds-source", "backfill-table"])
    parser.add_argument("arg", nargs="?", help="COUNT for volumes, NAME for rds-source")
    parser.add_argument("--state-dir", default=os.environ.get("OPSCTL_STATE_DIR", ".opsctl"))
    args = parser.parse_args()
    stack = Stack(Path(args.state_dir))
    if not stack.pieces():
        raise SystemExit(f"no embedded stack in {args.state_dir}: run `opsctl dev up` first")
    seeders = {
        "rotation": lambda: seed_rotation(stack),
        "volumes": lambda: seed_volumes(stack, int(args.arg or 250)),
        "rds-source": lambda: seed_rds_source(stack, args.arg or "orders-db"),
        "backfill-table": lambda: seed_backfill_table(stack),
    }
    print(seeders[args.what]())


if __name__ == "__main__":
    main()
