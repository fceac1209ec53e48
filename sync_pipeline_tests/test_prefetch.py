"""Pages read ahead in a background thread (issue 9): same pages, same order, errors where they happened,
and a consumer that stops early stops the reader."""

import threading
import time

import pytest

from sync_pipeline.connectors._prefetch import prefetched


def test_pages_arrive_in_order_and_all_of_them():
    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))
    assert list(prefetched(iter([]))) == []


def test_an_error_is_raised_after_the_pages_before_it():
    def pages():
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for page in prefetched(pages()):
            got.append(page)
    assert got == [1, 2]


def test_the_reader_runs_ahead_by_at_most_depth_pages_and_stops_with_the_consumer():
    pulled = []

    def pages():
        for n in range(1000):
            pulled.append(n)
            yield n

    it = prefetched(pages(), depth=2)
    assert next(it) == 0
    time.sleep(0.3)  # the reader fills the queue and waits
    assert len(pulled) <= 1 + 2 + 1  # the one consumed, two queued, one in hand waiting for a slot
    it.close()
    time.sleep(0.3)
    assert len(pulled) <= 4 and not [t for t in threading.enumerate() if t.name == "prefetch" and t.is_alive()]


def test_the_next_page_is_fetched_while_the_consumer_still_works_on_this_one():
    second_requested = threading.Event()

    def pages():
        yield "first"
        second_requested.set()
        yield "second"

    it = prefetched(pages())
    assert next(it) == "first"
    # still holding the first page: the reader asks for the second meanwhile (no timing, just the order)
    assert second_requested.wait(timeout=10)
    assert list(it) == ["second"]
