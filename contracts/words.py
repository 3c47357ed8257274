"""Small helpers for text people read: counts with the right noun."""

from __future__ import annotations


def plural(count: int, noun: str, many: str = "") -> str:
    """`1 statement`, `2 statements`, `10,000 volumes` (`many` for irregular nouns)."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"
