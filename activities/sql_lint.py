"""Migration SQL analysis with PostgreSQL's own parser (pglast): lint, split, and what it creates.

Pure functions, no I/O: the plan activity lints every pending migration, the apply
activity splits a migration into statements (CONCURRENTLY ones run outside a
transaction), and verify asks which objects the migrations should have left behind.
Rules look at one migration at a time; operations on a table created earlier in the
same migration are not flagged, because a new table is empty and nobody else uses it yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql, visitors
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.parser import ParseError
from pydantic import BaseModel

from contracts.migrate_schema import LintRule, Severity, split_statements

SEVERITY: dict[LintRule, Severity] = {
    # Each of these holds a lock that blocks reads or writes for as long as the table is big.
    LintRule.CREATE_INDEX_NOT_CONCURRENTLY: Severity.UNSAFE,
    LintRule.ADD_COLUMN_VOLATILE_DEFAULT: Severity.UNSAFE,
    LintRule.SET_NOT_NULL: Severity.UNSAFE,
    LintRule.CONSTRAINT_WITHOUT_NOT_VALID: Severity.UNSAFE,
    LintRule.UNIQUE_WITHOUT_INDEX: Severity.UNSAFE,
    LintRule.COLUMN_TYPE_CHANGE: Severity.UNSAFE,
    # Outside a transaction a failed retry would re-run the other statements, or build a second index.
    LintRule.CONCURRENTLY_WITH_OTHER_STATEMENTS: Severity.UNSAFE,
    LintRule.UNNAMED_CONCURRENT_INDEX: Severity.UNSAFE,
    LintRule.DROP_WITHOUT_IF_EXISTS: Severity.WARNING,
    LintRule.DROPS_DATA: Severity.WARNING,
    LintRule.UNKNOWN_DEFAULT_VOLATILITY: Severity.WARNING,
    # Apply sets lock_timeout before every migration anyway; the finding is about running it by hand.
    LintRule.MISSING_LOCK_TIMEOUT: Severity.INFO,
}

# Defaults calling these differ per row, so ADD COLUMN rewrites the whole table under an exclusive lock.
VOLATILE_FUNCTIONS = {
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "txid_current",
}
# Stable or immutable: evaluated once for ADD COLUMN, stored as the missing value (PostgreSQL 11+).
NON_VOLATILE_FUNCTIONS = {
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "btrim",
    "length",
    "concat",
    "md5",
    "abs",
    "round",
    "to_jsonb",
    "jsonb_build_object",
    "jsonb_build_array",
    "json_build_object",
    "make_interval",
}
SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}
DATA_DROPS = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_MATVIEW, ObjectType.OBJECT_SCHEMA}


class MigrationSqlError(ValueError):
    """SQL opsctl will not run: it does not parse, or it controls transactions itself."""


class Finding(BaseModel):
    """One lint finding; `statement` is 1-based, 0 means the migration as a whole."""

    statement: int
    rule: LintRule
    severity: Severity
    message: str


@dataclass(frozen=True)
class Statement:
    index: int  # 1-based
    text: str
    node: Any  # a pglast.ast node

    @property
    def concurrent(self) -> bool:
        """True if PostgreSQL refuses to run this statement inside a transaction block."""
        node = self.node
        if isinstance(node, ast.IndexStmt | ast.DropStmt):
            return bool(node.concurrent)
        if isinstance(node, ast.VacuumStmt):  # VACUUM, not ANALYZE, refuses a transaction block
            return bool(node.is_vacuumcmd)
        if isinstance(node, ast.ReindexStmt):
            return any(p.defname == "concurrently" for p in node.params or ())
        if isinstance(node, ast.AlterTableStmt):
            return any(
                c.subtype is AlterTableType.AT_DetachPartition and bool(getattr(c.def_, "concurrent", False))
                for c in node.cmds or ()
            )
        return False

    @property
    def is_setting(self) -> bool:
        return isinstance(self.node, ast.VariableSetStmt)


def parse_statements(sql: str) -> list[Statement]:
    """Split a migration into statements, or raise MigrationSqlError naming the problem."""
    try:
        nodes = [raw.stmt for raw in parse_sql(sql)]
    except ParseError as exc:
        raise MigrationSqlError(f"does not parse: {exc}") from None
    texts = split_statements(sql)  # the texts a reviewer sees, numbered the same way
    statements = [Statement(i, text, node) for i, (text, node) in enumerate(zip(texts, nodes, strict=True), 1)]
    for statement in statements:
        if isinstance(statement.node, ast.TransactionStmt):
            raise MigrationSqlError(
                f"statement {statement.index} controls the transaction ({statement.text!r}); "
                "opsctl runs each migration in a transaction of its own"
            )
    if not any(not s.is_setting for s in statements):
        raise MigrationSqlError("has no statements to run")
    return statements


def runs_outside_transaction(statements: list[Statement]) -> bool:
    return any(s.concurrent for s in statements)


def _rel(relation: ast.RangeVar | None) -> tuple[str | None, str]:
    """(schema or None, name) of a relation reference; the parser always fills the name."""
    if relation is None:
        return None, ""
    return relation.schemaname, relation.relname or ""


def concurrent_index_name(statement: Statement) -> tuple[str | None, str] | None:
    """(schema or None, index name) of a named CREATE INDEX CONCURRENTLY, else None."""
    node = statement.node
    if isinstance(node, ast.IndexStmt) and node.concurrent and node.idxname:
        return _rel(node.relation)[0], node.idxname
    return None


def lint(sql: str) -> list[Finding]:
    """Every finding of one migration, in statement order. Raises MigrationSqlError."""
    statements = parse_statements(sql)
    findings: list[Finding] = []
    new_tables: set[str] = set()

    def flag(statement: int, rule: LintRule, message: str) -> None:
        findings.append(Finding(statement=statement, rule=rule, severity=SEVERITY[rule], message=message))

    concurrent = [s for s in statements if s.concurrent]
    if concurrent and sum(1 for s in statements if not s.is_setting) > 1:
        flag(
            concurrent[0].index,
            LintRule.CONCURRENTLY_WITH_OTHER_STATEMENTS,
            "a CONCURRENTLY (or VACUUM) statement runs outside a transaction, so this migration is not atomic; "
            "put it in a migration of its own",
        )
    for s in statements:
        node = s.node
        if isinstance(node, ast.CreateStmt):
            new_tables.add(_rel(node.relation)[1])
        elif isinstance(node, ast.IndexStmt):
            table = _rel(node.relation)[1]
            if not node.concurrent and table not in new_tables:
                flag(
                    s.index,
                    LintRule.CREATE_INDEX_NOT_CONCURRENTLY,
                    f"CREATE INDEX on {table} blocks writes while it builds; use CREATE INDEX CONCURRENTLY",
                )
            if node.concurrent and not node.idxname:
                flag(
                    s.index,
                    LintRule.UNNAMED_CONCURRENT_INDEX,
                    f"name the index on {table}: a retry cannot find an unnamed one and would build a second",
                )
        elif isinstance(node, ast.AlterTableStmt):
            table = _rel(node.relation)[1]
            for cmd in node.cmds or ():
                _lint_alter(s.index, table, cmd, table in new_tables, flag)
        elif isinstance(node, ast.DropStmt):
            kind = getattr(node.removeType, "name", "").removeprefix("OBJECT_").lower().replace("_", " ")
            if not node.missing_ok:
                flag(s.index, LintRule.DROP_WITHOUT_IF_EXISTS, f"DROP {kind.upper()} without IF EXISTS")
            if node.removeType in DATA_DROPS:
                flag(s.index, LintRule.DROPS_DATA, f"DROP {kind.upper()} destroys its data; it cannot be undone")
        elif isinstance(node, ast.TruncateStmt):
            flag(s.index, LintRule.DROPS_DATA, "TRUNCATE destroys data; it cannot be undone")
    if not any(s.is_setting and s.node.name == "lock_timeout" for s in statements):
        flag(
            0,
            LintRule.MISSING_LOCK_TIMEOUT,
            "the migration does not SET lock_timeout; opsctl sets one before it runs, psql would not",
        )
    # Statement order; findings about the migration as a whole (statement 0) come last.
    return sorted(findings, key=lambda f: f.statement or len(statements) + 1)


def _lint_alter(index: int, table: str, cmd: Any, new_table: bool, flag: Any) -> None:
    subtype = cmd.subtype
    if subtype is AlterTableType.AT_DropColumn:
        if not cmd.missing_ok:
            flag(index, LintRule.DROP_WITHOUT_IF_EXISTS, f"DROP COLUMN {cmd.name} without IF EXISTS")
        flag(index, LintRule.DROPS_DATA, f"DROP COLUMN {table}.{cmd.name} destroys its data")
    elif subtype is AlterTableType.AT_DropConstraint and not cmd.missing_ok:
        flag(index, LintRule.DROP_WITHOUT_IF_EXISTS, f"DROP CONSTRAINT {cmd.name} without IF EXISTS")
    if new_table:
        return  # locks and rewrites of an empty table nobody uses yet are harmless
    if subtype is AlterTableType.AT_AddColumn:
        _lint_add_column(index, table, cmd.def_, flag)
    elif subtype is AlterTableType.AT_SetNotNull:
        flag(
            index,
            LintRule.SET_NOT_NULL,
            f"SET NOT NULL on {table}.{cmd.name} scans the table under an exclusive lock; "
            "add CHECK (... IS NOT NULL) NOT VALID and VALIDATE it first",
        )
    elif subtype is AlterTableType.AT_AlterColumnType:
        flag(
            index,
            LintRule.COLUMN_TYPE_CHANGE,
            f"changing the type of {table}.{cmd.name} may rewrite the table under an exclusive lock",
        )
    elif subtype is AlterTableType.AT_AddConstraint:
        constraint = cmd.def_
        kind = constraint.contype
        if kind in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK) and not constraint.skip_validation:
            flag(
                index,
                LintRule.CONSTRAINT_WITHOUT_NOT_VALID,
                f"ADD CONSTRAINT {constraint.conname or ''} on {table} validates every row under lock; "
                "add it NOT VALID, then VALIDATE CONSTRAINT in a later migration".replace("  ", " "),
            )
        if kind in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and not constraint.indexname:
            flag(
                index,
                LintRule.UNIQUE_WITHOUT_INDEX,
                f"a UNIQUE or PRIMARY KEY constraint on {table} builds its index under lock; "
                "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX",
            )


def _lint_add_column(index: int, table: str, column: Any, flag: Any) -> None:
    type_name = column.typeName.names[-1].sval if column.typeName is not None else ""
    constraints = column.constraints or ()
    rewrite = type_name in SERIAL_TYPES or any(c.contype is ConstrType.CONSTR_IDENTITY for c in constraints)
    unknown: set[str] = set()
    for constraint in constraints:
        if constraint.contype is ConstrType.CONSTR_DEFAULT and constraint.raw_expr is not None:
            called = _functions_called(constraint.raw_expr)
            rewrite = rewrite or bool(called & VOLATILE_FUNCTIONS)
            unknown |= called - VOLATILE_FUNCTIONS - NON_VOLATILE_FUNCTIONS
    if rewrite:
        flag(
            index,
            LintRule.ADD_COLUMN_VOLATILE_DEFAULT,
            f"ADD COLUMN {table}.{column.colname} with a volatile default rewrites the table under an "
            "exclusive lock; add it without a default, then backfill in batches",
        )
    elif unknown:
        flag(
            index,
            LintRule.UNKNOWN_DEFAULT_VOLATILITY,
            f"the default of {table}.{column.colname} calls {', '.join(sorted(unknown))}; "
            "if that is volatile, ADD COLUMN rewrites the table",
        )


def _functions_called(expression: Any) -> set[str]:
    names: set[str] = set()

    class Calls(visitors.Visitor):
        def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
            names.add(node.funcname[-1].sval.lower())

    Calls()(expression)
    return names


# ---- what migrations leave behind: verify's expectations ------------------------------------


class ExpectedObject(BaseModel):
    """A relation (table, index, view, sequence) or a column that should exist after apply."""

    kind: str  # relation | column
    schema_name: str
    name: str  # relation name
    column: str = ""
    table: str = ""  # for an index: the table it belongs to (dropping the table drops it)

    def describe(self) -> str:
        return f"{self.schema_name}.{self.name}" + (f".{self.column}" if self.column else "")


def expected_objects(sqls: list[str], default_schema: str) -> list[ExpectedObject]:
    """Objects the migrations create, in order, minus those a later statement drops or renames."""
    found: dict[tuple[str, str, str], ExpectedObject] = {}

    def add(kind: str, relation: ast.RangeVar | None, column: str = "", table: str = "") -> None:
        schema, name = _rel(relation)
        schema = schema or default_schema
        found[(schema, name, column)] = ExpectedObject(
            kind=kind, schema_name=schema, name=name, column=column, table=table
        )

    def forget(schema: str | None, name: str, column: str | None = None) -> None:
        schema = schema or default_schema
        for key, item in list(found.items()):
            same = key[0] == schema and key[1] == name and (column is None or key[2] == column)
            if same or (column is None and item.schema_name == schema and item.table == name):
                del found[key]

    for sql in sqls:
        for s in parse_statements(sql):
            node = s.node
            if isinstance(node, ast.CreateStmt | ast.CreateSeqStmt):
                add("relation", node.relation if isinstance(node, ast.CreateStmt) else node.sequence)
            elif isinstance(node, ast.ViewStmt):
                add("relation", node.view)
            elif isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
                add("relation", node.into.rel)
            elif isinstance(node, ast.IndexStmt) and node.idxname:
                schema, table = _rel(node.relation)
                add("relation", ast.RangeVar(schemaname=schema, relname=node.idxname), table=table)
            elif isinstance(node, ast.AlterTableStmt):
                schema, table = _rel(node.relation)
                for cmd in node.cmds or ():
                    if cmd.subtype is AlterTableType.AT_AddColumn:
                        add("column", node.relation, getattr(cmd.def_, "colname", ""))
                    elif cmd.subtype is AlterTableType.AT_DropColumn:
                        forget(schema, table, cmd.name)
            elif isinstance(node, ast.DropStmt):
                for name in node.objects or ():
                    parts = [p.sval for p in name] if isinstance(name, tuple) else []
                    if parts:
                        forget(parts[-2] if len(parts) > 1 else None, parts[-1])
            elif isinstance(node, ast.RenameStmt) and node.relation is not None:
                # A renamed object or column is no longer where we would look: stop expecting it.
                column = node.subname or "" if node.renameType is ObjectType.OBJECT_COLUMN else None
                forget(*_rel(node.relation), column)
    return list(found.values())
