"""Prints the server configuration table for README.md from the settings metadata."""

from qpi.server import config


def table() -> str:
    """The Markdown table of every `qpi serve` option."""
    rows = [
        "| CLI option | Environment variable | Config key | Default | Description |",
        "|---|---|---|---|---|",
    ]
    for o in config.options():
        key = f"`{o.config_key}`" if o.config_key else "—"
        description = " ".join(o.help.split())
        rows.append(f"| `{o.flag}` | `{o.env}` | {key} | `{o.default_text}` | {description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
