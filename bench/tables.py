"""Printing helpers shared by the benchmark scripts (standard library only)."""

from __future__ import annotations


def table_text(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, padded so it also reads as plain text."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "| " + " | ".join("{:>" + str(w) + "}" for w in widths) + " |"
    rule = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*r) for r in rows)])
