"""Record ids: 15 characters of [a-z0-9], uniformly drawn."""

from __future__ import annotations

import string
from collections import Counter
from unittest import mock

from qpi.server.store import types
from qpi.server.store.types import new_id

ALPHABET = set(string.ascii_lowercase + string.digits)


def test_an_id_is_15_characters_of_the_alphabet() -> None:
    for _ in range(200):
        record_id = new_id()
        assert len(record_id) == 15
        assert set(record_id) <= ALPHABET


def test_ids_do_not_repeat() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_every_character_is_drawn_about_equally_often() -> None:
    counts = Counter("".join(new_id() for _ in range(20_000)))  # 300,000 characters
    assert set(counts) == ALPHABET
    expected = 300_000 / 36
    # Within six standard deviations of a binomial count (±540): byte % 36 over all 256
    # byte values would draw "a".."d" 8/256 of the time, 1,042 above the expectation.
    assert all(abs(n - expected) < 6 * (expected * (35 / 36)) ** 0.5 for n in counts.values())


def test_bytes_that_would_bias_the_draw_are_dropped() -> None:
    # 252..255 would map onto "abcd" a seventh more often than the rest: skipped.
    biased = bytes([252, 253, 254, 255] * 6)
    fair = bytes(range(24))
    with mock.patch.object(types.secrets, "token_bytes", side_effect=[biased, fair]):
        assert new_id() == "abcdefghijklmno"
