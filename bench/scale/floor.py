"""The floor: download every page our extract reads (clients, then invoices; the same parameters) and
throw it away. `python bench/scale/floor.py BASE_URL TOKEN [PER_PAGE]`; prints {"pages", "bytes"}."""

from __future__ import annotations

import json
import sys

import httpx


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    per_page = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    pages = size = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for path in ("/clients.json", "/invoices.json"):
            page = 1
            while True:
                r = client.get(path, params={"api_token": token, "page": page, "per_page": per_page,
                                             "period": "all", "order": "updated_at.desc"})
                r.raise_for_status()
                pages += 1
                size += len(r.content)
                if len(r.json()) < per_page:
                    break
                page += 1
    print(json.dumps({"pages": pages, "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
