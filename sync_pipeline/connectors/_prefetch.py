"""Read a listing ahead in a background thread, so the next pages are on their way while this one is landed.

The network wait (and the server's work) then overlaps with parsing and landing, which DuckDB does without
holding the GIL. At most `depth` pages wait in memory. An error in the reader is raised in the consumer, at
the point where its page would have come; a consumer that stops early stops the reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_PAGE, _ERROR, _END = "page", "error", "end"


def prefetched(pages: Iterable[T], depth: int = 4) -> Iterator[T]:
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for page in pages:
                if not put((_PAGE, page)):
                    return
            put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((_ERROR, exc))

    reader = threading.Thread(target=read, name="prefetch", daemon=True)
    reader.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == _PAGE:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        reader.join(timeout=60)  # a request in flight finishes (or times out) before the client is closed
