"""SQL fragments from a request (an expression, a predicate, a guard query), checked with pglast.

Each fragment must parse as exactly one expression (or one SELECT for a guard); what
runs is re-printed from the parse tree, never the raw text, so comments and parenthesis
tricks cannot change what executes. Functions that reach beyond the rows are refused.
"""

from __future__ import annotations

from typing import Any

# Functions that reach beyond the updated rows: other sessions, the server, files, other
# databases, or arbitrary SQL in a string. The database role's privileges stay the real
# boundary (a user-defined function can do anything); this refuses the obvious.
FORBIDDEN_FUNCTIONS = (
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_promote",
    "pg_create_restore_point",
    "pg_backup_",
    "pg_start_backup",
    "pg_stop_backup",
    "pg_logical_emit_message",
    "pg_notify",
    "pg_sleep",
    "pg_advisory",
    "pg_try_advisory",
    "pg_read_",
    "pg_ls_",
    "pg_stat_file",
    "pg_file_",
    "set_config",
    "dblink",
    "lo_",
    "query_to_xml",
    "cursor_to_xml",
    "table_to_xml",
    "schema_to_xml",
    "database_to_xml",
)


# Everything a SELECT can have besides its target list: a fragment that sets one escaped.
SELECT_CLAUSES = (
    "fromClause",
    "whereClause",
    "groupClause",
    "havingClause",
    "windowClause",
    "sortClause",
    "limitCount",
    "limitOffset",
    "lockingClause",
    "withClause",
    "distinctClause",
    "intoClause",
    "valuesLists",
)


class SqlFragmentError(ValueError):
    """A SQL fragment of the spec that opsctl refuses to run."""


# ---- SQL fragment checks (pure: unit-tested without a database) ----------------------------


def _parse_single_select(sql: str, what: str, shape: str = "a single expression") -> Any:
    import pglast  # lazily: the workflow imports this module for its input types only

    try:
        statements: Any = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise SqlFragmentError(f"{what} does not parse: {exc}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, pglast.ast.SelectStmt):
        raise SqlFragmentError(f"{what} must be {shape}, nothing else")
    return statements[0].stmt


def _only_target(stmt: Any, what: str) -> Any:
    """The one target of `SELECT (fragment)`; anything beyond it means the fragment escaped its parentheses."""
    extra = [name for name in SELECT_CLAUSES if getattr(stmt, name, None)]
    targets: Any = stmt.targetList or ()
    if extra or stmt.larg is not None or len(targets) != 1 or targets[0].name:
        raise SqlFragmentError(f"{what} must be exactly one expression (found {', '.join(extra) or 'a list'})")
    return targets[0].val


def _refuse_forbidden(node: Any, what: str) -> None:
    from pglast import ast
    from pglast.visitors import Visitor

    class Inspect(Visitor):
        def visit(self, ancestors: Any, node: Any) -> None:
            attrs: Any = node  # pglast types optional node fields as possibly None
            if isinstance(node, ast.ParamRef):
                raise SqlFragmentError(f"{what} may not use parameters ($n): opsctl binds its own")
            if isinstance(node, ast.FuncCall):
                name = str(attrs.funcname[-1].sval).lower()
                if name.startswith(FORBIDDEN_FUNCTIONS):
                    raise SqlFragmentError(f"{what} may not call {name}()")
                if node.over is not None:
                    raise SqlFragmentError(f"{what} may not use window functions")
            if isinstance(node, ast.ColumnRef) and any(isinstance(f, ast.A_Star) for f in attrs.fields):
                raise SqlFragmentError(f"{what} may not use *")
            if isinstance(node, ast.SelectStmt) and (node.lockingClause or node.intoClause):
                raise SqlFragmentError(f"{what} may not lock rows or select INTO")
            if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
                raise SqlFragmentError(f"{what} may not modify data in a WITH clause")

    Inspect()(node)


def check_expression(fragment: str, what: str = "expression") -> str:
    """The fragment as one SQL expression, re-printed from its parse tree; raises SqlFragmentError.

    It is parsed as `SELECT (fragment)` and must stay exactly that. What runs is the
    re-printed tree, never the raw text, so what was checked is what executes (no comments).
    """
    from pglast.stream import RawStream

    expression = _only_target(_parse_single_select(f"SELECT ({fragment})", what), what)
    _refuse_forbidden(expression, what)
    return str(RawStream()(expression))


def check_guard_query(query: str) -> str:
    """A read-only SELECT (re-printed); it also runs in a READ ONLY transaction."""
    from pglast.stream import RawStream

    stmt = _parse_single_select(query, "guard query", "one SELECT statement")
    _refuse_forbidden(stmt, "guard query")
    return str(RawStream()(stmt))
