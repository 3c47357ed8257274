"""The client inlines a MigrateSchema directory into versioned, checksummed migrations."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from client.migrations import inline_directory
from contracts.migrate_schema import MigrateSchemaSpec
from contracts.request import DocumentError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_files_become_migrations_in_version_order_with_the_sha256_of_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    files = {"10_later.sql": "SELECT 10;\r\n", "0002_b.sql": "SELECT 2;", "0001_a.sql": "SELECT 1;\n"}
    for name, text in files.items():
        (folder / name).write_bytes(text.encode())
    (folder / "README.md").write_text("not a migration")

    spec = inline_directory({"database": "app", "directory": "migrations"}, tmp_path)

    assert ["0001_a", "0002_b", "10_later"] == [m["version"] for m in spec["migrations"]]
    assert "directory" not in spec
    assert "SELECT 10;\r\n" == spec["migrations"][2]["sql"], "no newline translation: checksum = sha256sum"
    assert [hashlib.sha256((folder / f"{m['version']}.sql").read_bytes()).hexdigest() for m in spec["migrations"]] == [
        m["checksum"] for m in spec["migrations"]
    ]
    MigrateSchemaSpec.model_validate(spec)


def test_a_spec_without_directory_is_returned_unchanged() -> None:
    spec = {"database": "app", "migrations": [{"version": "1", "sql": "SELECT 1"}]}
    assert spec is inline_directory(spec, "/nowhere")


def test_the_example_directory_inlines_into_a_valid_spec() -> None:
    spec = MigrateSchemaSpec.model_validate(inline_directory({"database": "app", "directory": "migrations"}, EXAMPLES))

    assert ["0001_create_accounts", "0002_add_accounts_plan", "0003_index_accounts_email"] == [
        m.version for m in spec.migrations
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"create_users.sql": "SELECT 1"}, "not named like"),
        ({"0001_Users.sql": "SELECT 1"}, "not named like"),
        ({}, "holds no .sql files"),
    ],
)
def test_a_bad_directory_is_a_document_error_on_spec_directory(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    with pytest.raises(DocumentError, match=message) as raised:
        inline_directory({"database": "app", "directory": str(tmp_path)}, "/elsewhere")
    assert "spec.directory" == raised.value.field


def test_a_missing_directory_is_reported() -> None:
    with pytest.raises(DocumentError, match="is not a directory"):
        inline_directory({"database": "app", "directory": "nope"}, EXAMPLES)


def test_a_directory_name_too_long_for_the_file_system_is_reported(tmp_path: Path) -> None:
    """ENAMETOOLONG is a document error on spec.directory, not a crash (found by tests/chaos/fuzz.py)."""
    with pytest.raises(DocumentError, match="File name too long") as raised:
        inline_directory({"database": "app", "directory": "x" * 300}, tmp_path)
    assert "spec.directory" == raised.value.field
