"""Serve injected raw records verbatim, including what Python's json cannot write: literals such as
`1e999` or a 5,000-digit number (RawJson), and lone surrogates, sent as `\\ud800` escapes like a buggy
exporter would."""

from __future__ import annotations

import json
from typing import Any

from ._http_sim import Response

_MARK = "\x00raw-json:"


class RawJson(str):
    """A value written into the JSON body as is, not as a string: RawJson("1e999") → 1e999."""


def _mark(value: Any, raws: list[str]) -> Any:
    if isinstance(value, RawJson):
        raws.append(str(value))
        return f"{_MARK}{len(raws) - 1}"
    if isinstance(value, dict):
        return {k: _mark(v, raws) for k, v in value.items()}
    if isinstance(value, list):
        return [_mark(v, raws) for v in value]
    return value


def dumps_verbatim(data: Any) -> bytes:
    """UTF-8 JSON of `data` with RawJson values unquoted and lone surrogates as `\\uXXXX` escapes."""
    raws: list[str] = []
    text = json.dumps(_mark(data, raws), ensure_ascii=False, separators=(",", ":"))  # NaN/Infinity allowed
    for n, raw in enumerate(raws):
        text = text.replace(json.dumps(f"{_MARK}{n}"), raw, 1)
    # "backslashreplace" writes a lone surrogate as \ud800: inside a JSON string, that is its JSON escape.
    return text.encode("utf-8", "backslashreplace")


def verbatim_response(data: Any) -> Response:
    return Response(200, dumps_verbatim(data), {"Content-Type": "application/json; charset=utf-8"})
