"""Two-way client sync Fakturownia ↔ Sugester (issue 10, DESIGN §5a), end to end over real HTTP against the
sandbox: creates and edits on either side arrive once, conflicts go to the declared winner with the loser kept,
values the target normalises do not echo, deletions are flagged and never propagated."""

from __future__ import annotations

import json
import signal
import time

from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
import yaml

from sync_pipeline_tests.conftest import TODAY, run_sync, write_config
from sync_pipeline_tests.test_concurrent_writes import InFlight
from sync_pipeline_tests.test_dead_runs import home  # noqa: F401 (fixture)

CONN = "fakturownia_to_sugester"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def twoway_config(tmp_path, url, *, clients: dict | None = None):
    """The test sync.yaml with a key scan on every run (deletions show at once) and the given `clients` options."""
    path = write_config(tmp_path, url)
    doc = yaml.safe_load(path.read_text())
    for system in doc["systems"].values():
        system["key_scan_every"] = "0s"
    if clients is not None:
        doc["connections"][CONN]["clients"] = clients
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def writes(sandbox) -> dict[str, int]:
    return {name: sum(1 for r in sim.requests() if r.method in WRITES)
            for name, sim in (("fakturownia", sandbox.fakturownia), ("sugester", sandbox.sugester))}


def clear(sandbox) -> None:
    sandbox.fakturownia.clear_requests()
    sandbox.sugester.clear_requests()


def sync(config, instance):
    """The two-way client sync alone, over real HTTP: the connection job's steps that read both sides' clients
    and sync them (the deals and metrics steps, which the full runs of other tests cover, would only add time).
    Returns the clients step's counts, as a run summary gives them, and the run's metadata by asset."""
    from sync_pipeline.cli.report import asset_metadata, first_error, load_counts, two_way_counts
    from sync_pipeline.defs.build import build_definitions
    from sync_pipeline.defs.resources import run_options_config
    from sync_pipeline.defs.schedules import job_name

    steps = [dg.AssetKey(["fakturownia", "clients"]), dg.AssetKey(["sugester", "clients"]), dg.AssetKey([CONN, "clients"])]
    result = build_definitions(config).resolve_job_def(job_name(CONN)).execute_in_process(
        instance=instance, asset_selection=steps, run_config=run_options_config(as_of=TODAY), raise_on_error=False)
    events = result.all_events
    assert result.success, first_error(events)
    meta = asset_metadata(events)
    clients = meta[f"{CONN}/clients"]
    return {**load_counts(clients), **two_way_counts(clients)}, SimpleNamespace(materializations=meta)


def named(records, name):
    return [r for r in records.values() if r.get("name") == name]


def query(config, sql, params=()):
    doc = yaml.safe_load(config.read_text())
    with duckdb.connect(doc["warehouse"]["path"], read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def synced(tmp_path, sandbox, instance):
    """A first sync done: every Fakturownia client is in Sugester."""
    config = twoway_config(tmp_path, sandbox.url)
    first, _ = sync(config, instance)
    assert first["per_side"]["sugester"]["created"] == len(sandbox.fakturownia.clients)
    assert len(sandbox.sugester.clients) == len(sandbox.fakturownia.clients)
    return config


def test_a_client_created_on_each_side_appears_on_the_other_once_edits_arrive_and_then_nothing_is_written(
        synced, sandbox, instance):
    f_new = sandbox.fakturownia.user_add_client(name="Piekarnia Nowa", tax_no="PL 521-000-11-22",
                                               email="biuro@piekarnia.example", city="Łódź")
    s_new = sandbox.sugester.user_add_client(name="Kwiaciarnia Róża", email="roza@kwiaty.example", city="Kraków")
    clients, _ = sync(synced, instance)
    assert clients["per_side"]["sugester"]["created"] == 1 and clients["per_side"]["fakturownia"]["created"] == 1
    assert len(named(sandbox.sugester.clients, "Piekarnia Nowa")) == 1
    [copied] = named(sandbox.fakturownia.clients, "Kwiaciarnia Róża")
    assert copied["external_id"] == f"sugester:{s_new['id']}" and copied["city"] == "Kraków"
    [there] = named(sandbox.sugester.clients, "Piekarnia Nowa")
    assert there["external_ids"] == {"sync_pipeline": f"fakturownia:{f_new['id']}"}

    # an edit on each side arrives on the other
    some_f = next(c for c in sandbox.fakturownia.clients.values() if c["id"] != copied["id"])
    some_s = next(c for c in sandbox.sugester.clients.values()
                  if c["external_ids"].get("sync_pipeline") not in (f"fakturownia:{some_f['id']}", None))
    sandbox.fakturownia.user_edit_client(some_f["id"], email="nowy@adres.example")
    sandbox.sugester.user_edit_client(some_s["id"], city="Gdańsk")
    clients, _ = sync(synced, instance)
    assert clients["per_side"] == {"sugester": {**clients["per_side"]["sugester"], "updated": 1},
                                   "fakturownia": {**clients["per_side"]["fakturownia"], "updated": 1}}
    f_of_s = int(some_s["external_ids"]["sync_pipeline"].split(":")[1])
    assert sandbox.fakturownia.clients[f_of_s]["city"] == "Gdańsk"
    [s_of_f] = [c for c in sandbox.sugester.clients.values()
                if c["external_ids"].get("sync_pipeline") == f"fakturownia:{some_f['id']}"]
    assert s_of_f["email"] == "nowy@adres.example"

    # and the run after that writes nothing to either side
    clear(sandbox)
    clients, _ = sync(synced, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}
    assert clients["unchanged"] == len(sandbox.fakturownia.clients) == len(sandbox.sugester.clients)


@pytest.mark.parametrize("winner", ["fakturownia", "sugester"])
def test_both_sides_edited_the_winner_is_on_both_and_the_loser_is_kept(tmp_path, sandbox, instance, winner):
    config = twoway_config(tmp_path, sandbox.url, clients={"direction": "both", "winner": winner})
    sync(config, instance)
    f_client = next(iter(sandbox.fakturownia.clients.values()))
    [s_client] = [c for c in sandbox.sugester.clients.values()
                  if c["external_ids"].get("sync_pipeline") == f"fakturownia:{f_client['id']}"]
    sandbox.fakturownia.user_edit_client(f_client["id"], city="Wrocław", email="f@edit.example")
    sandbox.sugester.user_edit_client(s_client["id"], city="Szczecin")
    clients, run = sync(config, instance)

    kept_city = "Wrocław" if winner == "fakturownia" else "Szczecin"
    assert sandbox.fakturownia.clients[f_client["id"]]["city"] == kept_city
    assert sandbox.sugester.clients[s_client["id"]]["city"] == kept_city
    assert clients["conflicts"] == 1
    [(won, a_values, b_values, reason)] = query(
        config, "SELECT winner, a_values, b_values, reason FROM sync.conflicts WHERE connection = ?", [CONN])
    assert (won, reason) == (winner, "both_changed")
    assert json.loads(a_values)["city"] == "Wrocław" and json.loads(b_values)["city"] == "Szczecin"
    # the run's metadata names the conflict with both versions
    [example] = run.materializations[f"{CONN}/clients"]["conflicts_examples"]
    loser_city = "Szczecin" if winner == "fakturownia" else "Wrocław"
    assert example["winner"] == winner and example["lost"]["city"] == loser_city and example["kept"]["city"] == kept_city

    clear(sandbox)
    sync(config, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}


def test_values_the_target_normalises_do_not_echo(synced, sandbox, instance):
    """Sugester keeps phones without separators, Fakturownia groups Polish numbers: each answer differs from
    what was sent, and the next run still writes nothing."""
    sandbox.sugester.user_add_client(name="Echo S", phone="600 100 200")
    f_new = sandbox.fakturownia.user_add_client(name="Echo F", phone="601-200-300")
    sync(synced, instance)
    [in_f] = named(sandbox.fakturownia.clients, "Echo S")
    [in_s] = named(sandbox.sugester.clients, "Echo F")
    assert in_f["phone"] == "+48 600 100 200" and in_s["phone"] == "+48601200300"
    assert sandbox.fakturownia.clients[f_new["id"]]["phone"] == "+48 601 200 300"  # normalised when typed in

    for _ in range(2):
        clear(sandbox)
        clients, _ = sync(synced, instance)
        assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}
        assert clients["per_side"]["sugester"]["updated"] == clients["per_side"]["fakturownia"]["updated"] == 0


def test_a_normalised_value_would_echo_without_the_answer_hash(synced, sandbox, instance, monkeypatch):
    """The counter-test: if the link stored the hash of what we sent instead of what the target answered, the
    normalised phone would come back as an edit: the echo test above would catch that."""
    from sync_pipeline.load import twoway

    sent_not_answered = twoway._Answering.update

    def update_forgetting_answer(self, target_id, item):
        sent_not_answered(self, target_id, item)
        self.answers[item.our_key] = {**self.answers[item.our_key], "phone": item.payload.get("phone")}

    f_client = next(iter(sandbox.fakturownia.clients.values()))
    sandbox.fakturownia.user_edit_client(f_client["id"], phone="602 300 400")
    monkeypatch.setattr(twoway._Answering, "update", update_forgetting_answer)
    sync(synced, instance)
    monkeypatch.undo()
    clear(sandbox)
    sync(synced, instance)
    assert writes(sandbox)["fakturownia"] == 1  # Sugester's "602300400" bounced back


def test_deletions_on_either_side_delete_nothing_and_are_reported(synced, sandbox, instance):
    f_gone, f_kept = list(sandbox.fakturownia.clients)[:2]
    [s_twin] = [c["id"] for c in sandbox.sugester.clients.values()
                if c["external_ids"].get("sync_pipeline") == f"fakturownia:{f_gone}"]
    [s_gone] = [c["id"] for c in sandbox.sugester.clients.values()
                if c["external_ids"].get("sync_pipeline") == f"fakturownia:{f_kept}"]
    n_f, n_s = len(sandbox.fakturownia.clients), len(sandbox.sugester.clients)
    sandbox.fakturownia.user_delete("client", f_gone)
    sandbox.sugester.user_delete("client", s_gone)
    clear(sandbox)
    clients, run = sync(synced, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}  # nothing deleted, nothing re-created
    assert len(sandbox.fakturownia.clients) == n_f - 1 and len(sandbox.sugester.clients) == n_s - 1
    assert s_twin in sandbox.sugester.clients and f_kept in sandbox.fakturownia.clients
    assert clients["deletions_flagged"] == 2
    flagged = query(synced, "SELECT system, record_id, other_id FROM sync.deletions WHERE connection = ? "
                            "ORDER BY system", [CONN])
    assert flagged == [("fakturownia", str(f_gone), str(s_twin)), ("sugester", str(s_gone), str(f_kept))]
    shown = run.materializations[f"{CONN}/clients"]["deletions_examples"]
    assert {(d["deleted_in"], d["key"]) for d in shown} == {("fakturownia", f"fakturownia:{f_gone}"),
                                                           ("sugester", f"fakturownia:{f_kept}")}
    clear(sandbox)
    sync(synced, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}
    assert len(query(synced, "SELECT * FROM sync.deletions")) == 2  # flagged once


def test_first_sync_pairs_by_key_tax_number_and_email_and_reports_ambiguous_matches(tmp_path, sandbox, instance):
    f = list(sandbox.fakturownia.clients.values())
    by_tax = sandbox.sugester.user_add_client(name="Other name", tax_no=f"PL{f[0]['tax_no']}")
    by_mail = sandbox.sugester.user_add_client(name="Mail twin", email=f[1]["email"].upper())
    by_key = sandbox.sugester.user_add_client(name="Keyed", external_id=f"fakturownia:{f[2]['id']}")
    # two Sugester clients with one Fakturownia client's tax number: reported, neither paired nor created
    twins = [sandbox.sugester.user_add_client(name=f"Twin {i}", tax_no=f[3]["tax_no"]) for i in range(2)]
    config = twoway_config(tmp_path, sandbox.url)
    clients, run = sync(config, instance)
    links = dict(query(config, "SELECT b_id, a_id FROM sync.links WHERE connection = ?", [CONN]))
    assert links[str(by_tax["id"])] == str(f[0]["id"])
    assert links[str(by_mail["id"])] == str(f[1]["id"])
    assert links[str(by_key["id"])] == str(f[2]["id"])
    assert str(f[3]["id"]) not in links.values() and not any(str(t["id"]) in links for t in twins)
    assert clients["ambiguous"] == 3  # the Fakturownia client and both Sugester twins
    assert len(sandbox.sugester.clients) == 5 + len(f) - 4  # paired ones not created twice, f[3] not created
    examples = run.materializations[f"{CONN}/clients"]["ambiguous_examples"]
    assert any("tax number" in e["detail"] for e in examples)


def test_direction_a_to_b_reports_a_sugester_edit_as_divergent_and_writes_nothing_to_fakturownia(
        tmp_path, sandbox, instance):
    config = twoway_config(tmp_path, sandbox.url, clients={"direction": "a_to_b"})
    sync(config, instance)
    s_client = next(iter(sandbox.sugester.clients.values()))
    sandbox.sugester.user_edit_client(s_client["id"], city="Opole")
    sandbox.sugester.user_add_client(name="Only in Sugester")
    clear(sandbox)
    clients, _ = sync(config, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}
    assert clients["divergent"] == 2


def test_run_summary_shows_two_way_counts_per_side(synced, sandbox, instance):
    from sync_pipeline.cli.run import render_text, run_connections, summarize

    sandbox.sugester.user_add_client(name="Summary S")
    runs = run_connections(synced, instance=instance, as_of=TODAY)
    text = render_text(summarize(runs, synced))
    line = next(li for li in text.splitlines() if li.strip().startswith("clients"))
    assert "→ sugester created 0, updated 0" in line and "→ fakturownia created 1, updated 0" in line
    assert "conflicts 0" in line and "deletions flagged 0" in line


def test_departments_map_both_ways_by_name_or_id_and_the_unmapped_are_reported(tmp_path, sandbox, instance):
    config = twoway_config(tmp_path, sandbox.url)
    doc = yaml.safe_load(config.read_text())
    doc["connections"][CONN]["departments"] = {"Acme Software Sp. z o.o.": 301}  # a name on one side, an id on the other
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    clients, run = sync(config, instance)
    twins = {c["external_ids"]["sync_pipeline"]: c for c in sandbox.sugester.clients.values()}
    f_clients = list(sandbox.fakturownia.clients.values())
    assert {c["department_id"] for c in f_clients} == {7781, 7782}
    for c in f_clients:
        assert twins[f"fakturownia:{c['id']}"]["department_id"] == (301 if c["department_id"] == 7781 else None)
    meta = run.materializations[f"{CONN}/clients"]
    assert meta["departments_unmapped"] == {"fakturownia": ["7782"]}
    assert meta["departments_mapped"] == {"7781": "301"}

    s_new = sandbox.sugester.user_add_client(name="Dział S", department_id=301)
    sync(config, instance)
    [copied] = named(sandbox.fakturownia.clients, "Dział S")
    assert copied["department_id"] == 7781 and copied["external_id"] == f"sugester:{s_new['id']}"
    clear(sandbox)
    sync(config, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}


def test_a_department_the_systems_do_not_have_fails_the_step_naming_it(tmp_path, sandbox, instance):
    config = twoway_config(tmp_path, sandbox.url)
    doc = yaml.safe_load(config.read_text())
    doc["connections"][CONN]["departments"] = {"Nie ma takiego": 301}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    runs, _ = run_sync(config, instance)
    assert not runs[0].success
    assert "'Nie ma takiego' is no department of fakturownia" in runs[0].error
    assert "7781 (Acme Software Sp. z o.o.)" in runs[0].error


def test_a_create_into_fakturownia_lost_in_a_crash_is_looked_up_not_repeated(synced, sandbox, instance):
    """Intent before send, for writes to the source side too: the link says `create_a intended` with no answer
    (a crash after Fakturownia stored it); the next run finds it by our key and adopts it."""
    s_new = sandbox.sugester.user_add_client(name="Crash S", email="crash@s.example")
    sync(synced, instance)
    key = f"sugester:{s_new['id']}"
    path = yaml.safe_load(synced.read_text())["warehouse"]["path"]
    with duckdb.connect(path) as conn:
        conn.execute("UPDATE sync.links SET state = 'intended', intent = 'create_a', a_id = NULL, a_hash = NULL "
                     "WHERE our_key = ?", [key])
    n_f = len(sandbox.fakturownia.clients)
    clients, _ = sync(synced, instance)
    assert clients["per_side"]["fakturownia"]["adopted"] == 1 and clients["per_side"]["fakturownia"]["created"] == 0
    assert len(sandbox.fakturownia.clients) == n_f and len(named(sandbox.fakturownia.clients, "Crash S")) == 1
    clear(sandbox)
    sync(synced, instance)
    assert writes(sandbox) == {"fakturownia": 0, "sugester": 0}


@pytest.mark.parametrize("side", ["sugester", "fakturownia"])
def test_a_run_killed_while_creating_on_either_side_duplicates_and_loses_nothing(tmp_path, sandbox, home, side):  # noqa: F811
    from sync_pipeline_tests.test_dead_runs import _cli

    for n in range(30):
        sandbox.sugester.user_add_client(name=f"Native {n}")  # no tax number or e-mail: only our key pairs it
    sim = getattr(sandbox, side)
    before = len(sim.clients)
    path = "/app/clients.json" if side == "sugester" else "/clients.json"
    slow = InFlight(sim, 0.05, matches=lambda req: req.method == "POST" and req.path == path)
    config = twoway_config(tmp_path, sandbox.url)
    proc = _cli(config, home, "run")
    deadline = time.monotonic() + 120
    while len(sim.clients) < before + 5 or slow.now < 2:  # some created, several in flight
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got to the client creates"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rerun = _cli(config, home, "run")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out + err
    in_s = [c["external_ids"].get("sync_pipeline") for c in sandbox.sugester.clients.values()
            if c["external_ids"].get("sync_pipeline")]
    in_f = [c["external_id"] for c in sandbox.fakturownia.clients.values() if str(c["external_id"]).startswith("sugester:")]
    assert len(in_s) == len(set(in_s)) and len(in_f) == len(set(in_f)), "a client was created twice"
    native = [c for c in sandbox.sugester.clients.values() if c["name"].startswith("Native")]
    assert sorted(in_f) == sorted(f"sugester:{c['id']}" for c in native)  # every Sugester client once in Fakturownia
    assert sorted(in_s) == sorted(f"fakturownia:{i}" for i, c in sandbox.fakturownia.clients.items()
                                  if not str(c["external_id"]).startswith("sugester:"))


def test_sugester_clients_are_read_newest_first_and_scanned_in_full_only_when_due(tmp_path, sandbox, instance):
    config = twoway_config(tmp_path, sandbox.url)
    doc = yaml.safe_load(config.read_text())
    doc["systems"]["sugester"]["key_scan_every"] = "24h"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    sync(config, instance)  # Sugester is empty until the first sync fills it:
    sync(config, instance)  # this read is a full one (no cursor yet), and counts as the scan
    s_client = next(iter(sandbox.sugester.clients.values()))
    sandbox.sugester.user_edit_client(s_client["id"], city="Bydgoszcz")
    sandbox.sugester.clear_requests()
    clients, run = sync(config, instance)
    reads = sandbox.sugester.requests("GET", "/app/clients.json")
    assert reads and {r.arg("order") for r in reads} == {"updated_at.desc"}  # newest first, no full read
    assert clients["per_side"]["fakturownia"]["updated"] == 1
    assert "key_scan_found" not in run.materializations["sugester/clients"]

    doc["systems"]["sugester"]["key_scan_every"] = "0s"  # due: the whole list is read for its ids
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    sandbox.sugester.clear_requests()
    _, run = sync(config, instance)
    orders = [r.arg("order") for r in sandbox.sugester.requests("GET", "/app/clients.json")]
    assert orders[0] == "updated_at.desc" and None in orders
    assert run.materializations["sugester/clients"]["key_scan_found"] == len(sandbox.sugester.clients)
