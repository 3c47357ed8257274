"""Turn a MigrateSchema `directory` into inline migrations, on the client, before submission.

The worker may run on another machine and never sees the client's disk, so a document
naming `spec.directory` is rewritten here: each `NNNN_name.sql` file becomes a migration
with its version (the file name without `.sql`), its SQL and its checksum. Files are
read as bytes and decoded without newline translation, so a migration's checksum is the
`sha256sum` of its file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from contracts.migrate_schema import checksum_of, version_key
from contracts.request import DocumentError

MIGRATION_FILE = re.compile(r"^([0-9]{1,20}[a-z0-9_]*)\.sql$")


def inline_directory(spec: dict[str, Any], base_dir: str | Path) -> dict[str, Any]:
    """A copy of a MigrateSchema spec (document form) with `directory` replaced by `migrations`.

    `directory` is relative to `base_dir` (the document's folder) unless absolute. A spec
    without `directory` is returned unchanged. Raises DocumentError naming `spec.directory`.
    """
    directory = spec.get("directory")
    if directory is None:
        return spec
    field = "spec.directory"
    if not isinstance(directory, str) or not directory:
        raise DocumentError("must be a path to a folder of NNNN_name.sql files", field=field)
    if spec.get("migrations"):
        raise DocumentError("give either migrations or directory, not both", field=field)
    folder = Path(directory) if Path(directory).is_absolute() else Path(base_dir) / directory
    try:
        if not folder.is_dir():
            raise DocumentError(f"{folder} is not a directory", field=field)
        files = [path for path in folder.iterdir() if path.is_file() and path.suffix == ".sql"]
    except OSError as exc:  # a name too long, a folder you may not list
        raise DocumentError(f"cannot read {folder}: {exc.strerror or exc}", field=field) from exc
    misnamed = sorted(path.name for path in files if not MIGRATION_FILE.match(path.name))
    if misnamed:
        raise DocumentError(
            f"{', '.join(misnamed)} in {folder} not named like 0001_create_users.sql (lower case)",
            field=field,
        )
    if not files:
        raise DocumentError(f"{folder} holds no .sql files", field=field)
    migrations = []
    for path in sorted(files, key=lambda p: version_key(p.stem)):
        try:
            sql = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DocumentError(f"cannot read {path}: {exc}", field=field) from exc
        migrations.append({"version": path.stem, "sql": sql, "checksum": checksum_of(sql)})
    inlined = {key: value for key, value in spec.items() if key != "directory"}
    inlined["migrations"] = migrations
    return inlined
