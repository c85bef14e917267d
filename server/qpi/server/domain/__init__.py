"""Pure domain rules of the QPI server (stdlib only; no transport or storage imports)."""
