"""A list response's total, capped flag and next page token from a page and its count."""

from __future__ import annotations

from qpi.server.domain.listing import Total
from qpi.server.rpc.list_query import page_end


def test_an_exact_total_ends_the_pages_and_a_capped_one_does_not() -> None:
    # Exact: the page that reaches the total is the last.
    assert page_end(0, 2, 2, Total(4), "k")[:2] == (4, False)
    assert page_end(0, 2, 2, Total(4), "k")[2]
    assert page_end(2, 2, 2, Total(4), "k") == (4, False, "")
    # Capped: a full page may be followed by more, even at or past the counted total.
    total, capped, token = page_end(2, 2, 2, Total(4, capped=True), "k")
    assert (total, capped) == (4, True)
    assert token
    assert page_end(6, 2, 2, Total(4, capped=True), "k")[2]
    assert page_end(6, 2, 1, Total(4, capped=True), "k") == (4, True, "")
    # Not counted: -1, never capped; a full page may be followed by more.
    assert page_end(0, 2, 2, None, "k")[:2] == (-1, False)
    assert page_end(0, 2, 2, None, "k")[2]
    assert page_end(0, 2, 1, None, "k") == (-1, False, "")
