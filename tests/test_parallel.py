"""watchkeeper.parallel: work spread over cores gives what doing it in order gives."""

from __future__ import annotations

import pytest

from watchkeeper.parallel import parallel_map, read_ahead, spans


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100])
def test_spans_cut_every_position_once_in_order(n):
    cut = spans(n, 4)
    assert [i for part in cut for i in range(n)[part]] == list(range(n))
    assert all(part.stop > part.start for part in cut) or n == 0


def test_parallel_map_keeps_order_and_reraises():
    assert list(parallel_map(lambda x: x * x, range(50))) == [x * x for x in range(50)]

    def fail(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x

    with pytest.raises(ValueError, match="three"):
        list(parallel_map(fail, range(6)))


def test_read_ahead_yields_every_item_in_order_and_reraises():
    assert list(read_ahead(iter([0, None, *range(2, 20)]))) == [0, None, *range(2, 20)]

    def broken():
        yield 1
        raise OSError("cannot be read")

    items = read_ahead(broken())
    assert next(items) == 1
    with pytest.raises(OSError, match="cannot be read"):
        next(items)
