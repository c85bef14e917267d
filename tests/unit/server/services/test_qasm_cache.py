"""The parser pool's memo of accepted circuits (services/qasm_cache.py)."""

from __future__ import annotations

from qpi.server.services.qasm_cache import WidthCache, digest


def test_the_split_between_circuits_is_part_of_the_key() -> None:
    assert digest(["ab", "c"]) != digest(["a", "bc"])
    assert digest(["ab", "c"]) == digest(["ab", "c"])


def test_least_recently_used_entries_go_first() -> None:
    cache = WidthCache(entries=2)
    a, b, c = digest(["a"]), digest(["b"]), digest(["c"])
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) == 1  # a is now the most recent
    cache.put(c, 3)
    assert cache.get(b) is None
    assert (cache.get(a), cache.get(c)) == (1, 3)


def test_a_zero_sized_cache_remembers_nothing() -> None:
    cache = WidthCache(entries=0)
    cache.put(digest(["a"]), 1)
    assert cache.get(digest(["a"])) is None
