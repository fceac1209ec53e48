"""`sync-pipeline accounts`: the accounts list read from a warehouse filled by hand."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest

from sync_pipeline.cli import main
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import write_config

AS_OF = date(2026, 11, 20)

# account_id, name, band, score, overdue count, overdue amount, overdue since, max days, total due, total paid,
# last payment, dso, unconverted
ACCOUNTS = [
    ("fi:1", "Acme", "critical", 20, 3, "15000.50", date(2026, 9, 6), 75, "20000.00", "1234.56", date(2026, 10, 1),
     "95.5", []),
    ("fi:2", "Bravo", "at_risk", 55, 1, "2500.00", date(2026, 10, 31), 20, "4000.10", "100.00", None, "30.0", []),
    ("fi:3", "Cedar", "healthy", 95, 0, "0.00", None, None, "1000.00", "9000.00", date(2026, 11, 2), "12.3", []),
    ("fi:4", "delta", "critical", 30, 2, "15000.50", date(2026, 8, 22), 90, "15000.50", "0.00", None, None, []),
    ("fi:5", "Echo", "unknown", None, 0, "0.00", None, None, "0.00", "0.00", None, None, ["EUR"]),
]


@pytest.fixture
def cfg(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:1")
    with connect(tmp_path / "warehouse.duckdb") as conn:
        for (aid, name, band, score, n_over, over, since, days, due, paid, last, dso, unconv) in ACCOUNTS:
            conn.execute(
                "INSERT INTO marts.account_metrics_reporting VALUES (?, 'PLN', ?, 4, 0, ?, ?, ?, ?, ?, ?, "
                "0, 0, 0, 0, 0, 0, ?, ?, ?)",
                [aid, AS_OF, paid, due, n_over, over, since, days, dso, last, unconv])
            conn.execute("INSERT INTO marts.financial_health VALUES (?, ?, ?, ?, ?)",
                         [aid, AS_OF, score, band, f"reason for {aid}"])
            conn.execute(
                "INSERT INTO staging.accounts (account_id, source_instance, source_system, source_id, name, email, "
                "phone, source_updated_at) VALUES (?, 'fakturownia', 'fakturownia', ?, ?, ?, ?, TIMESTAMPTZ '2026-01-01')",
                [aid, aid[3:], name, f"{name.lower()}@example.com", "+48 600 000 00" + aid[-1]])
        # an older staging row for fi:1: the newest one gives name and contacts, never a mix
        conn.execute(
            "INSERT INTO staging.accounts (account_id, source_instance, source_system, source_id, name, email, phone, "
            "source_updated_at) VALUES ('fi:1', 'old', 'fakturownia', '1', 'Acme (old)', NULL, NULL, "
            "TIMESTAMPTZ '2025-01-01')")
        alerts = [("a1", "fi:1", "open"), ("a2", "fi:1", "open"), ("a3", "fi:1", "resolved"),
                  ("a4", "fi:4", "open"), ("a5", "fi:2", "resolved")]
        for alert_id, aid, status in alerts:
            conn.execute("INSERT INTO marts.risk_alerts VALUES (?, ?, 'r', 'overdue_amount', '>', 1, 'warning', 2, "
                         "?, ?, NULL, ?)", [alert_id, aid, AS_OF, AS_OF, status])
    return path


def _run(capsys, cfg, *args):
    code = main(["accounts", "--config", str(cfg), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _ids_in_order(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.startswith("fi:")]


def test_default_text_sorted_by_overdue_amount(capsys, cfg):
    code, out, err = _run(capsys, cfg)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "5 accounts (as of 2026-11-20, amounts in PLN); showing 5"
    # ties on the amount (fi:1 and fi:4, fi:3 and fi:5) are broken by account id
    assert _ids_in_order(out) == ["fi:1", "fi:4", "fi:2", "fi:3", "fi:5"]
    acme = next(line for line in lines if line.startswith("fi:1"))
    assert "Acme " in acme and "(old)" not in acme and "acme@example.com" in acme
    assert "15 000.50" in acme and "20 000.00" in acme and "1 234.56" in acme and "95.5" in acme
    assert "critical" in acme and "2026-09-06" in acme
    assert "EUR" in next(line for line in lines if line.startswith("fi:5"))
    assert lines[-1] == "bands (all accounts): healthy 1, at_risk 1, critical 2, unknown 1"


def test_band_filter(capsys, cfg):
    code, out, _ = _run(capsys, cfg, "--band", "critical")
    assert code == 0
    assert out.splitlines()[0] == "2 accounts (as of 2026-11-20, amounts in PLN); showing 2"
    assert _ids_in_order(out) == ["fi:1", "fi:4"]
    code, out, _ = _run(capsys, cfg, "--band", "critical", "--band", "unknown", "--sort", "name")
    assert _ids_in_order(out) == ["fi:1", "fi:4", "fi:5"]


@pytest.mark.parametrize("sort, expected", [
    ("score", ["fi:1", "fi:4", "fi:2", "fi:3", "fi:5"]),             # worst first, no score last
    ("max_days_overdue", ["fi:4", "fi:1", "fi:2", "fi:3", "fi:5"]),  # nothing overdue last
    ("total_due", ["fi:1", "fi:4", "fi:2", "fi:3", "fi:5"]),
    ("name", ["fi:1", "fi:2", "fi:3", "fi:4", "fi:5"]),              # case-insensitive: delta after Cedar
    ("overdue_invoice_count", ["fi:1", "fi:4", "fi:2", "fi:3", "fi:5"]),
])
def test_sort(capsys, cfg, sort, expected):
    code, out, _ = _run(capsys, cfg, "--sort", sort)
    assert code == 0
    assert _ids_in_order(out) == expected


def test_limit(capsys, cfg):
    code, out, _ = _run(capsys, cfg, "--limit", "2")
    assert code == 0
    assert out.splitlines()[0] == "5 accounts (as of 2026-11-20, amounts in PLN); showing 2"
    assert _ids_in_order(out) == ["fi:1", "fi:4"]
    assert "(3 more; --limit 0 shows all)" in out
    _, out, _ = _run(capsys, cfg, "--limit", "0", "--sort", "score")
    assert len(_ids_in_order(out)) == 5


def test_json_shape_exact_decimals_and_open_alerts(capsys, cfg):
    code, out, _ = _run(capsys, cfg, "--json", "--limit", "0")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"as_of", "reporting_currency", "total", "bands", "accounts"}
    assert data["as_of"] == "2026-11-20" and data["reporting_currency"] == "PLN" and data["total"] == 5
    assert data["bands"] == {"healthy": 1, "at_risk": 1, "critical": 2, "unknown": 1}
    by_id = {a["account_id"]: a for a in data["accounts"]}
    assert [a["account_id"] for a in data["accounts"]] == ["fi:1", "fi:4", "fi:2", "fi:3", "fi:5"]
    assert by_id["fi:1"] == {
        "account_id": "fi:1", "name": "Acme", "band": "critical", "score": 20, "overdue_invoice_count": 3,
        "overdue_amount": "15000.50", "reporting_currency": "PLN", "overdue_since": "2026-09-06",
        "max_days_overdue": 75, "total_due": "20000.00", "total_paid": "1234.56", "last_payment_date": "2026-10-01",
        "dso_90d": "95.5", "open_alerts": 2, "reason": "reason for fi:1", "email": "acme@example.com",
        "phone": "+48 600 000 001", "unconverted_currencies": [],
    }
    assert {k: a["open_alerts"] for k, a in by_id.items()} == {"fi:1": 2, "fi:4": 1, "fi:2": 0, "fi:3": 0, "fi:5": 0}
    assert by_id["fi:5"]["score"] is None and by_id["fi:5"]["unconverted_currencies"] == ["EUR"]
    assert by_id["fi:2"]["last_payment_date"] is None and by_id["fi:3"]["max_days_overdue"] is None

    _, out, _ = _run(capsys, cfg, "--json", "--band", "critical", "--limit", "1")
    data = json.loads(out)
    assert data["total"] == 2 and [a["account_id"] for a in data["accounts"]] == ["fi:1"]
    assert data["bands"]["healthy"] == 1  # band counts cover all accounts


def test_missing_warehouse_exits_1_with_message(capsys, tmp_path):
    cfg = write_config(tmp_path, "http://127.0.0.1:1")
    code, out, err = _run(capsys, cfg)
    assert code == 1 and out == ""
    assert "no metrics yet: run `sync-pipeline run` first" in err
    assert not (tmp_path / "warehouse.duckdb").exists()  # read-only: nothing created


def test_warehouse_without_metrics_exits_1(capsys, tmp_path):
    cfg = write_config(tmp_path, "http://127.0.0.1:1")
    # a file from before the marts existed
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    code, _, err = _run(capsys, cfg)
    assert code == 1 and "no metrics yet: run `sync-pipeline run` first" in err
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:  # opened read-only: untouched
        assert conn.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = 'marts'").fetchone() == (0,)
    # the schema in place but no run has computed metrics
    with connect(tmp_path / "warehouse.duckdb"):
        pass
    code, _, err = _run(capsys, cfg, "--json")
    assert code == 1 and "no metrics yet: run `sync-pipeline run` first" in err


def test_unknown_sort_is_a_usage_error(capsys, cfg):
    with pytest.raises(SystemExit) as exc:
        main(["accounts", "--config", str(cfg), "--sort", "overdue_amount; DROP TABLE x"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["accounts", "--config", str(cfg), "--limit", "-1"])
    assert exc.value.code == 2


def test_config_error_exits_2(capsys, tmp_path):
    code, _, err = _run(capsys, tmp_path / "nope.yaml")
    assert code == 2 and "configuration file not found" in err


def test_needs_no_secrets(capsys, cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("ACCOUNTS_TEST_UNSET_TOKEN", raising=False)
    cfg = write_config(tmp_path, "http://127.0.0.1:1", fakturownia_token="${ACCOUNTS_TEST_UNSET_TOKEN}")
    code, out, err = _run(capsys, cfg, "--limit", "1")
    assert code == 0, err
    assert _ids_in_order(out) == ["fi:1"]
