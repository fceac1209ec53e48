"""The peer: dlt's rest_api source reading the same Fakturownia pages into DuckDB (bench only; runs in
bench/.venv-dlt, never a product dependency).

    python bench/scale/dlt_run.py BASE_URL TOKEN WORKDIR parquet|default

Clients and invoices, per_page 100, newest first, page numbers until an empty page (dlt's page_number
paginator), append into a fresh DuckDB file (dlt's fast path; it has no notion of our cursor, staging or
plan). Prints {"clients": n, "invoices": n} counted in DuckDB afterwards.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dlt
import duckdb
from dlt.sources.rest_api import rest_api_source


def main() -> int:
    base, token, workdir, loader = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    workdir.mkdir(parents=True, exist_ok=True)
    source = rest_api_source({
        "client": {
            "base_url": base.rstrip("/") + "/",
            "paginator": {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": None,
                          "stop_after_empty_page": True},
        },
        "resource_defaults": {
            "endpoint": {"params": {"api_token": token, "per_page": 100, "period": "all",
                                    "order": "updated_at.desc"}},
        },
        "resources": [
            {"name": "clients", "endpoint": {"path": "clients.json"}},
            {"name": "invoices", "endpoint": {"path": "invoices.json"}},
        ],
    })
    db = workdir / "dlt.duckdb"
    pipeline = dlt.pipeline(pipeline_name="scale_bench", destination=dlt.destinations.duckdb(str(db)),
                            dataset_name="raw", pipelines_dir=str(workdir / "pipelines"))
    kwargs = {"loader_file_format": "parquet"} if loader == "parquet" else {}
    pipeline.run(source, **kwargs)
    with duckdb.connect(str(db), read_only=True) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in ("clients", "invoices")}
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
