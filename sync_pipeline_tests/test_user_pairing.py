"""The user pairing report (issue 10): the inferred users endpoints of both clients and simulators, the
pairing rule, the `<connection>/user_pairing` asset over real HTTP, and `sync-pipeline users`."""

from __future__ import annotations

import json
import random

import dagster as dg
import httpx
import pytest

from sync_pipeline.cli.entry import main
from sync_pipeline.connectors.fakturownia.client import FakturowniaClient
from sync_pipeline.connectors.sugester.client import SugesterClient
from sync_pipeline.defs.build import build_definitions
from sync_pipeline.load.user_pairing import User, pair_users, preview_markdown
from sync_pipeline.sandbox.demo_users import fakturownia_users, sugester_users
from sync_pipeline.sandbox.fakturownia_sim import FakturowniaSim
from sync_pipeline.sandbox.sugester_sim import SugesterSim
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.conftest import F_TOKEN, S_TOKEN, run_sync, shipped_config, write_config
from sync_pipeline_tests.test_http import TOKEN, FakeTime, MaxJitter

CONN = "fakturownia_to_sugester"
KEY = dg.AssetKey([CONN, "user_pairing"])
# The demo users as the report shows them: (difference, fakturownia login/e-mail, sugester login/e-mail).
DEMO_REPORT = [
    (None, "anna.kowalska", "anna.kowalska@demo-firma.pl", "anna.kowalska", "anna.kowalska@demo-firma.pl"),
    (None, "marta.zielinska", "Marta.Zielinska@demo-firma.pl", "marta.zielinska", "marta.zielinska@demo-firma.pl"),
    (None, "piotr.nowak", "piotr.nowak@demo-firma.pl", "piotr.nowak", "piotr.nowak@demo-firma.pl"),
    ("login", "ewa.lewandowska", "ewa.lewandowska@demo-firma.pl", "elewandowska", "ewa.lewandowska@demo-firma.pl"),
    ("email", "tomasz.wojcik", "tomasz.wojcik@demo-firma.pl", "tomasz.wojcik", "t.wojcik@demo-firma.pl"),
    ("only_in_fakturownia", "jan.kaminski", "jan.kaminski@demo-firma.pl", None, None),
    ("only_in_sugester", None, None, "katarzyna.dabrowska", "katarzyna.dabrowska@demo-firma.pl"),
]


def _summary(rows: list[dict]) -> list[tuple]:
    return [(r["difference"], r["a_login"], r["a_email"], r["b_login"], r["b_email"]) for r in rows]


# -- clients on MockTransport ------------------------------------------------------------------------------


class Pages:
    """Page N of `pages` for `page=N`, an empty array past the end; records every request."""

    def __init__(self, *pages: list) -> None:
        self.pages, self.requests = pages, []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = int(request.url.params["page"])
        return httpx.Response(200, json=self.pages[page - 1] if page <= len(self.pages) else [])


def _mock(cls, base_url: str, server: Pages):
    time_ = FakeTime()
    return cls(system=cls.__name__, base_url=base_url, api_token=TOKEN, per_page=2,
               transport=httpx.MockTransport(server), sleep=time_.sleep, clock=time_.clock, rng=MaxJitter())


@pytest.mark.parametrize(("cls", "base_url", "path"), [
    (FakturowniaClient, "https://acme.fakturownia.pl", "/users.json"),
    (SugesterClient, "https://acme.sugester.pl", "/app/users.json"),
])
def test_users_are_paged_with_the_token_in_the_query(cls, base_url, path):
    users = [{"id": i, "login": f"u{i}", "email": f"u{i}@x.pl"} for i in range(1, 6)]
    server = Pages(users[0:2], users[2:4], users[4:5])
    client = _mock(cls, base_url, server)
    assert list(client.iter_user_pages()) == [users[0:2], users[2:4], users[4:5]]  # as received
    assert [r.url.params["page"] for r in server.requests] == ["1", "2", "3", "4"]  # a short page is confirmed
    for request in server.requests:
        assert (request.method, request.url.path) == ("GET", path)
        assert request.url.params["api_token"] == TOKEN and request.url.params["per_page"] == "2"


# -- the pairing rule -----------------------------------------------------------------------------------------


def _u(uid, login, email, name=None) -> User:
    return User.from_record({"id": uid, "login": login, "email": email, "name": name})


def _pair(a, b):
    return pair_users(a, b, connection="c", a_system="left", b_system="right")


def _rows(report) -> list[tuple]:
    return [(r.difference, r.a and r.a.id, r.b and r.b.id) for r in report.rows]


def test_identical_login_and_email_pair_after_trimming_email_in_any_case():
    report = _pair([_u(1, " ann ", "Ann@X.pl "), _u(2, "bob", "bob@x.pl")],
                   [_u(10, "bob", "bob@x.pl"), _u(11, "ann", "ann@x.PL")])
    assert _rows(report) == [(None, "1", "11"), (None, "2", "10")]
    assert report.paired == 2 and report.unpaired == ()
    assert report.rows[0].a.login == "ann" and report.rows[0].a.email == "Ann@X.pl"  # trimmed, case kept


def test_each_difference_is_named():
    report = _pair(
        [_u(1, "ann", "ann@x.pl"), _u(2, "bob", "bob@x.pl"), _u(3, "cy", "cy@x.pl"), _u(4, "Dee", "dee@x.pl")],
        [_u(11, "annie", "ann@x.pl"), _u(12, "bob", "robert@x.pl"), _u(15, "eve", "eve@x.pl"),
         _u(14, "dee", "dee@x.pl")])
    assert _rows(report) == [
        ("login", "4", "14"),            # logins compare exactly: Dee is not dee
        ("login", "1", "11"),
        ("email", "2", "12"),
        ("only_in_left", "3", None),
        ("only_in_right", None, "15"),
    ]
    assert report.differences() == {"login": 2, "email": 1, "only_in_left": 1, "only_in_right": 1}


def test_users_without_login_or_email_are_never_paired_and_duplicates_pair_once():
    report = _pair([_u(1, "ann", None), _u(2, None, "x@x.pl"), _u(3, "bob", "bob@x.pl"), _u(4, "bob", "bob@x.pl")],
                   [_u(11, "ann", None), _u(12, None, "x@x.pl"), _u(13, "bob", "bob@x.pl")])
    assert _rows(report) == [(None, "3", "13"), ("login", "2", "12"), ("email", "1", "11"),
                             ("only_in_left", "4", None)]


def test_order_does_not_depend_on_the_order_read():
    a = [User.from_record(r) for r in fakturownia_users()]
    b = [User.from_record(r) for r in sugester_users()]
    first = _pair(a, b).as_rows()
    rng = random.Random(3)
    for _ in range(5):
        rng.shuffle(a)
        rng.shuffle(b)
        assert _pair(a, b).as_rows() == first


def test_names_come_from_name_or_first_and_last_name():
    assert User.from_record({"id": 1, "first_name": "Jan", "last_name": "Kamiński"}).name == "Jan Kamiński"
    assert User.from_record({"id": 1, "name": " Ewa L ", "first_name": "x"}).name == "Ewa L"
    assert User.from_record({"id": 1}).name is None


def test_preview_says_how_many_rows_it_shows():
    report = _pair([_u(i, f"u{i}", f"u{i}@x.pl") for i in range(30)], [_u(99, "zed", "zed@x.pl")])
    md = preview_markdown(report, limit=5)
    assert md.splitlines()[0] == "showing 5 of 31 (unpaired first)"
    assert "| unpaired | only_in_left | u0 / u0@x.pl (id 0) | - |" in md


# -- simulators --------------------------------------------------------------------------------------------


def test_simulators_keep_users_in_their_state_and_old_states_get_the_demo_users():
    fakt, sug = FakturowniaSim(api_token="t"), SugesterSim(api_token="t")
    fakt.users[1_200_001]["email"] = "changed@x.pl"
    del sug.users[7_001]
    fakt2, sug2 = FakturowniaSim(api_token="t"), SugesterSim(api_token="t")
    fakt2.restore(fakt.snapshot())
    sug2.restore(sug.snapshot())
    assert fakt2.users[1_200_001]["email"] == "changed@x.pl" and 7_001 not in sug2.users
    for sim, demo in ((FakturowniaSim(api_token="t"), fakturownia_users()), (SugesterSim(api_token="t"),
                                                                               sugester_users())):
        old = {k: v for k, v in sim.snapshot().items() if k != "users"}  # saved before users existed
        sim.users.clear()
        sim.restore(old)
        assert list(sim.users.values()) == demo


def test_simulators_page_users_over_http(sandbox):
    for cls, path, token, demo in ((FakturowniaClient, "/fakturownia", F_TOKEN, fakturownia_users()),
                                   (SugesterClient, "/sugester", S_TOKEN, sugester_users())):
        with cls(system="s", base_url=sandbox.url + path, api_token=token, per_page=4) as client:
            pages = list(client.iter_user_pages())
        assert [len(p) for p in pages] == [4, len(demo) - 4]
        assert [u for p in pages for u in p] == demo
    assert sandbox.fakturownia.request_count("GET", r"/users\.json") == 3  # 2 pages and the end check


# -- the asset, over real HTTP against the sandbox ----------------------------------------------------------


def _table(config_path) -> list[dict]:
    with connect(config_path.parent / "warehouse.duckdb", read_only=True) as conn:
        cur = conn.execute("SELECT * FROM sync.user_pairing WHERE connection = ?", [CONN])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _materialize(config_path, instance) -> dict:
    result = dg.materialize([build_definitions(config_path).resolve_assets_def(KEY)], instance=instance)
    assert result.success
    [event] = result.get_asset_materialization_events()
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}


def test_the_asset_stores_the_report_and_each_run_replaces_it(config_path, sandbox, instance):
    meta = _materialize(config_path, instance)
    assert {k: meta[k] for k in ("paired", "unpaired", "unpaired_login", "unpaired_email",
                                 "unpaired_only_in_fakturownia", "unpaired_only_in_sugester")} == {
        "paired": 3, "unpaired": 4, "unpaired_login": 1, "unpaired_email": 1,
        "unpaired_only_in_fakturownia": 1, "unpaired_only_in_sugester": 1}
    assert meta["preview"].startswith("showing 7 of 7 (unpaired first)")
    rows = _table(config_path)
    assert _summary(rows) == DEMO_REPORT
    assert {(r["status"], r["a_system"], r["b_system"]) for r in rows[:3]} == {("paired", "fakturownia", "sugester")}
    assert (rows[0]["a_id"], rows[0]["a_name"], rows[0]["b_id"], rows[0]["b_name"]) == (
        "1200001", "Anna Kowalska", "7001", "Anna Kowalska")

    # Tomasz fixes his Sugester e-mail, Jan leaves Fakturownia: the next report replaces the rows.
    sandbox.sugester.users[7_004]["email"] = "tomasz.wojcik@demo-firma.pl"
    del sandbox.fakturownia.users[1_200_006]
    meta = _materialize(config_path, instance)
    assert (meta["paired"], meta["unpaired"]) == (4, 2)
    assert _summary(_table(config_path)) == [
        DEMO_REPORT[0], DEMO_REPORT[1], DEMO_REPORT[2],
        (None, "tomasz.wojcik", "tomasz.wojcik@demo-firma.pl", "tomasz.wojcik", "tomasz.wojcik@demo-firma.pl"),
        DEMO_REPORT[3], DEMO_REPORT[6],
    ]


def test_a_sync_of_the_connection_refreshes_the_report(config_path, instance):
    runs, summary = run_sync(config_path, instance)
    assert summary["ok"], runs[0].error
    assert runs[0].materializations[KEY.to_user_string()]["paired"] == 3
    assert {r["run_id"] for r in _table(config_path)} == {runs[0].run_id}


def test_the_asset_is_in_the_connection_job_only_where_both_systems_list_users(tmp_path, sandbox):
    defs = build_definitions(shipped_config(tmp_path, sandbox.url))
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == KEY)
    assert (spec.group_name, set(spec.kinds), spec.tags.get("sync/connection")) == (CONN, {"api", "duckdb"}, CONN)
    assert defs.resolve_assets_def(KEY).op.pool == "duckdb"
    assert KEY in defs.resolve_job_def(f"{CONN}_job").asset_layer.selected_asset_keys
    assert [k for k in (a.key for a in defs.resolve_all_asset_specs()) if k.path[-1] == "user_pairing"] == [KEY]


# -- the CLI -------------------------------------------------------------------------------------------------


def test_cli_prints_the_paired_count_and_each_unpaired_user(config_path, capsys):
    assert main(["users", CONN, "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        f"{CONN}: users of fakturownia and sugester",
        "  paired (identical login and e-mail, can switch between the apps): 3",
        "  unpaired: 4",
        "    difference           fakturownia                                                   sugester",
        "    login                ewa.lewandowska / ewa.lewandowska@demo-firma.pl (id 1200005)  "
        "elewandowska / ewa.lewandowska@demo-firma.pl (id 7005)",
        "    email                tomasz.wojcik / tomasz.wojcik@demo-firma.pl (id 1200004)      "
        "tomasz.wojcik / t.wojcik@demo-firma.pl (id 7004)",
        "    only_in_fakturownia  jan.kaminski / jan.kaminski@demo-firma.pl (id 1200006)        -",
        "    only_in_sugester     -                                                             "
        "katarzyna.dabrowska / katarzyna.dabrowska@demo-firma.pl (id 7006)",
    ]
    assert F_TOKEN not in out and S_TOKEN not in out


def test_cli_json(config_path, capsys):
    assert main(["users", CONN, "--json", "--config", str(config_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert (report["paired"], report["unpaired"], report["differences"]) == (
        3, 4, {"login": 1, "email": 1, "only_in_fakturownia": 1, "only_in_sugester": 1})
    assert _summary(report["rows"]) == DEMO_REPORT
    assert report["rows"][5]["a_name"] == "Jan Kamiński" and report["rows"][6]["b_id"] == "7006"
    assert F_TOKEN not in out and S_TOKEN not in out


def test_cli_on_the_built_in_sandbox(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SYNC_SANDBOX_URL", raising=False)
    config = shipped_config(tmp_path, "${SYNC_SANDBOX_URL}")  # keeps the URL reference the sandbox fills in
    doc = config.read_text(encoding="utf-8")
    config.write_text("sandbox: {clients: 3, invoices_per_client: 1, state_file: null}\n" + doc, encoding="utf-8")
    assert main(["users", CONN, "--json", "--config", str(config)]) == 0
    assert _summary(json.loads(capsys.readouterr().out)["rows"]) == DEMO_REPORT


def test_cli_refuses_a_connection_without_users_endpoints(tmp_path, sandbox, capsys):
    config = shipped_config(tmp_path, sandbox.url)
    assert main(["users", "zoho_to_customersuccessbox", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "zoho (Zoho Invoice) has no users endpoint" in err
    assert main(["users", "nope", "--config", str(config)]) == 2
    assert "no connection named nope" in capsys.readouterr().err


def test_cli_wrong_token_fails_without_printing_it(tmp_path, sandbox, capsys):
    secret = "wr0ng-t0ken-77/demo"
    config = write_config(tmp_path, sandbox.url, fakturownia_token=secret)
    assert main(["users", CONN, "--config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert "401" in err and "GET /users.json" in err, err
    assert "wr0ng" not in out + err
