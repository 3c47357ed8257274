"""Create stale EBS volumes on the embedded stack's AWS endpoint for the sweep example.

Usage: .venv/bin/python examples/seed_volumes.py [COUNT] [--state-dir .opsctl]
Makes COUNT available volumes tagged purpose=opsctl-example, plus two the sweep must skip
(one tagged keep=yes).
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=250)
    parser.add_argument("--state-dir", default=os.environ.get("OPSCTL_STATE_DIR", ".opsctl"))
    args = parser.parse_args()
    port = json.loads((Path(args.state_dir) / "stack.json").read_text())["ports"]["aws"]
    ec2 = boto3.client(
        "ec2",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="opsctl-dev",
        aws_secret_access_key="opsctl-dev",  # noqa: S106 - moto accepts any key
    )

    def create(tags: dict[str, str]) -> str:
        spec = [{"ResourceType": "volume", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        return str(ec2.create_volume(AvailabilityZone="us-east-1a", Size=8, TagSpecifications=spec)["VolumeId"])

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: create({"purpose": "opsctl-example"}), range(args.count)))
    create({"purpose": "opsctl-example", "keep": "yes"})
    print(f"created {len(made)} stale volumes and 1 to keep (tag purpose=opsctl-example)")


if __name__ == "__main__":
    main()
