"""How figures and tables are written in ``docs/results.md`` (shared by :mod:`.results` and its sections)."""


def fmt(value, scale=1.0, digits=3, unit="", missing="not reached"):
    """``value * scale`` to ``digits`` significant digits with ``unit``; ``missing`` for None."""
    if value is None:
        return missing
    return f"{value * scale:.{digits}g}{unit}"


def table(header: list, rows: list) -> list:
    """The lines of a markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]
