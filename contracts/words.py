"""Small helpers for text people read: counts with the right noun."""

from __future__ import annotations


def visible(text: str) -> str:
    """Control and format characters (terminal escapes, newlines, bidi overrides) shown as their escapes."""
    return "".join(char if char.isprintable() or char == " " else repr(char)[1:-1] for char in text)


def plural(count: int, noun: str, many: str = "") -> str:
    """`1 statement`, `2 statements`, `10,000 volumes` (`many` for irregular nouns)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
