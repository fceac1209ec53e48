"""Issue 7's bad-input corpus (bad_input_corpus.py) run end to end over real HTTP against the sandbox.

Every record-level case of a vendor is served by ONE sandbox and staged by ONE pipeline run; each case's
record is then looked up by its marker. Transport cases are read by the vendor's client (real HTTP, no
Dagster), and one run per vendor breaks all its listings at once to show what a run keeps of them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest

from sync_pipeline.config import load_settings
from sync_pipeline.sandbox.demo_data import DemoSpec
from sync_pipeline.sandbox.server import Sandbox
from sync_pipeline.sandbox.zoho_demo import ZohoDemoSpec
from sync_pipeline.cli.report import failure_line
from sync_pipeline.warehouse.db import connect
from sync_pipeline_tests.bad_input_corpus import (CASES, Case, FakturowniaSeed, ZohoSeed, marker, record_cases,
                                                  transport_cases)
from sync_pipeline_tests.conftest import F_TOKEN, S_TOKEN, TODAY, run_sync, write_config
from sync_pipeline_tests.test_e2e_zoho_csb import zoho_config

pytestmark = pytest.mark.e2e

MAX_REASON = 300
# per vendor: the extract asset of each raw entity
EXTRACT = {"fakturownia": {"clients": "fakturownia/clients", "invoices": "fakturownia/invoice_changes"},
           "zoho": {"clients": "zoho/clients", "invoices": "zoho/invoice_changes",
                    "creditnotes": "zoho/creditnote_changes"}}
SEEDS = {"fakturownia": FakturowniaSeed, "zoho": ZohoSeed}
SYSTEM_TYPE = {"fakturownia": "fakturownia", "zoho": "zoho_invoice"}


@pytest.fixture(scope="module")
def shared_instance():
    """One Dagster instance for the module's runs: creating one costs more than a failing run."""
    with dg.instance_for_test() as inst:
        yield inst


def small_sandbox(clients: int, invoices_per_client: int, customers: int, invoices_per_customer: int) -> Sandbox:
    return Sandbox(spec=DemoSpec(seed=7, clients=clients, invoices_per_client=invoices_per_client, months=14,
                                 today=TODAY),
                   zoho_spec=ZohoDemoSpec(seed=11, customers=customers, invoices_per_customer=invoices_per_customer,
                                          today=TODAY),
                   fakturownia_token=F_TOKEN, sugester_token=S_TOKEN)


def config_for(system: str, tmp_path, sandbox, *, per_page: int | None = None) -> str:
    if system == "zoho":
        return zoho_config(tmp_path, sandbox, **({"per_page": per_page} if per_page else {}))
    path = write_config(tmp_path, sandbox.url)
    if per_page:
        path.write_text(path.read_text().replace("    identifier: source_id\n",
                                                 f"    identifier: source_id\n    per_page: {per_page}\n", 1))
    return str(path)


def inject(sandbox, system: str, entity: str, record) -> None:
    if system == "fakturownia":
        (sandbox.fakturownia.inject_client if entity == "clients" else sandbox.fakturownia.inject_invoice)(record)
    else:
        sandbox.zoho.inject({"clients": "contacts"}.get(entity, entity), record)


def served(sandbox, system: str, entity: str) -> int:
    """Records the simulator serves for `entity` without the injected ones."""
    sim = sandbox.fakturownia if system == "fakturownia" else sandbox.zoho
    store = {"fakturownia": {"clients": "clients", "invoices": "invoices"},
             "zoho": {"clients": "contacts", "invoices": "invoices", "creditnotes": "creditnotes"}}[system][entity]
    return len(getattr(sim, store))


# -- the corpus as a table ------------------------------------------------------------------------------------


def test_the_corpus_covers_every_vendor_and_entity_with_at_least_40_cases():
    counts = Counter((c.system, c.entity) for c in CASES)
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    for key in [("fakturownia", "clients"), ("fakturownia", "invoices"), ("fakturownia", "transport"),
                ("zoho", "clients"), ("zoho", "invoices"), ("zoho", "creditnotes"), ("zoho", "transport")]:
        assert counts[key] >= 3, key
    for c in CASES:
        assert c.expect in ("quarantine", "staged", "error") and c.description
        assert c.reason or c.expect == "staged", c.id
        assert (c.entity == "transport") == (c.expect == "error"), c.id


# -- record-level cases: one run per vendor -------------------------------------------------------------------


@pytest.mark.parametrize("system", ["fakturownia", "zoho"])
def test_every_bad_record_of_a_vendor_ends_in_quarantine_with_its_reason_in_one_run(system, tmp_path,
                                                                                    shared_instance):
    instance = shared_instance
    cases = record_cases(system)
    with small_sandbox(6, 5, 10, 3) as sandbox:
        sim = sandbox.fakturownia if system == "fakturownia" else sandbox.zoho
        seed = SEEDS[system](sim, cases)
        injected: Counter[str] = Counter()
        for case in cases:
            for record in case.make(seed, case.id):
                inject(sandbox, system, case.entity, record)
                injected[case.entity] += 1
        expected_served = {e: served(sandbox, system, e) + injected[e] for e in EXTRACT[system]}
        config = config_for(system, tmp_path, sandbox)
        started = datetime.now(timezone.utc)
        runs, summary = run_sync(config, instance)
    assert summary["ok"], runs[0].error
    [run] = runs
    problems: list[str] = []

    # records fetched = landed + identical copies + superseded versions; landed = staged + quarantined
    for entity, asset in EXTRACT[system].items():
        meta = run.materializations[asset]
        dup = sum(1 for c in cases if c.entity == entity and c.accounting == "duplicates_identical")
        sup = sum(1 for c in cases if c.entity == entity and c.accounting == "superseded_in_read")
        assert meta["records_received"] == expected_served[entity], (entity, meta)
        assert (meta["duplicates_identical"], meta["superseded_in_read"]) == (dup, sup), (entity, meta)
        assert meta["records_received"] == meta["records_landed"] + dup + sup, (entity, meta)
    for entity, counts in summary["systems"][system].items():  # Zoho's credit notes are staged as invoices
        raw_entities = ["clients"] if entity == "clients" else [e for e in EXTRACT[system] if e != "clients"]
        landed = sum(run.materializations[EXTRACT[system][e]]["records_landed"] for e in raw_entities)
        assert counts["extracted"] == sum(expected_served[e] for e in raw_entities)
        assert counts["records_in"] == landed == counts["staged"] + counts["quarantined"], (entity, counts)

    with connect(load_settings(config).warehouse_path) as conn:
        quarantine = conn.execute(
            "SELECT entity, source_id, reason, disposition, payload::VARCHAR FROM staging.quarantine").fetchall()
        accounts = {r[0]: r for r in conn.execute(
            "SELECT source_id, account_id, name, kind FROM staging.accounts WHERE source_instance = ?",
            [system]).fetchall()}
        invoices = {r[0]: r for r in conn.execute(
            """SELECT source_id, kind, status, issue_date, due_date, paid_date, currency, total_gross, paid_amount,
                      amount_due FROM staging.invoices WHERE source_instance = ?""", [system]).fetchall()}
        raw = {e: conn.execute(f"SELECT source_id, payload::VARCHAR FROM raw.{system}_{e}").fetchall()
               for e in EXTRACT[system]}
        cursors = dict(conn.execute("SELECT entity, cursor_ts FROM sync.cursors WHERE system = ?", [system]).fetchall())
    columns = {"clients": ("source_id", "account_id", "name", "kind"),
               "invoices": ("source_id", "kind", "status", "issue_date", "due_date", "paid_date", "currency",
                            "total_gross", "paid_amount", "amount_due")}

    for reason in (r[2] for r in quarantine):
        if len(reason) >= MAX_REASON:
            problems.append(f"a reason is {len(reason)} characters long: {reason[:120]!r}…")
    # the far-future records did not move any cursor
    for entity, cursor in cursors.items():
        if cursor > started + timedelta(minutes=10):
            problems.append(f"the {entity} cursor moved to {cursor}")

    for case in cases:
        mark = marker(case.id)
        entity = "clients" if case.entity == "clients" else "invoices"
        rows = [r for r in quarantine if r[0] == entity and mark in r[4]]
        ids = {sid for sid, payload in raw[case.entity] if mark in payload and sid is not None}
        staged_table = accounts if entity == "clients" else invoices
        staged = [staged_table[i] for i in ids if i in staged_table]
        where = f"{case.id} ({case.description})"
        if case.expect == "quarantine":
            expected = seed.fill(case, case.reason)
            if len(rows) != case.copies:
                problems.append(f"{where}: {len(rows)} rows in quarantine, expected {case.copies}")
            for r in rows:
                if expected not in r[2]:
                    problems.append(f"{where}: reason {r[2][:200]!r} lacks {expected!r}")
            if staged:
                problems.append(f"{where}: staged although quarantined: {repr(staged)[:200]}")
        else:
            if rows:
                problems.append(f"{where}: quarantined: {[r[2][:200] for r in rows]}")
            if len(staged) != 1:
                problems.append(f"{where}: {len(staged)} staged rows, expected 1")
                continue
            row = dict(zip(columns[entity], staged[0]))
            for column, value in case.staged.items():
                want = seed.fill(case, value)
                got = row[column]
                if (str(got) if isinstance(want, str) else got) != want:
                    problems.append(f"{where}: staged {column} = {repr(got)[:200]}, expected {want!r}")
    assert not problems, "\n".join(problems)


# -- transport cases ------------------------------------------------------------------------------------------
# Each case at client level: the client the pipeline builds from sync.yaml reads the broken listing over real
# HTTP (fast: no Dagster). Then one run per vendor breaks every listing of it at once and shows what a run
# does with that: a clear error per listing, nothing of a broken page landed, no cursor moved, no staging.

RUN_CASES = {"fakturownia": ["tf_clients_truncated", "tf_invoices_page2_truncated"],
             "zoho": ["tz_contacts_truncated", "tz_invoices_html", "tz_creditnotes_object"]}
ENDPOINT_ENTITY = {"GET /clients.json": "clients", "GET /invoices.json": "invoices", "GET /contacts": "clients",
                   "GET /invoices": "invoices", "GET /creditnotes": "creditnotes"}


def entity_of(case: Case) -> str:
    endpoint = case.reason.split(": ", 1)[1]
    return next(e for label, e in sorted(ENDPOINT_ENTITY.items(), key=lambda kv: -len(kv[0]))
                if endpoint.startswith(label + " "))


@pytest.mark.parametrize("case", transport_cases(), ids=lambda c: c.id)
def test_a_broken_listing_ends_in_a_clear_error_naming_the_system_and_the_endpoint(case: Case, tmp_path):
    from sync_pipeline.connectors._http import ApiError
    from sync_pipeline.connectors.registry import build_client, source_of

    entity = entity_of(case)
    method = next(s.read_changed for s in source_of(SYSTEM_TYPE[case.system]).streams if s.entity == entity)
    with small_sandbox(3, 4, 4, 3) as sandbox:
        case.make(sandbox)
        config = config_for(case.system, tmp_path, sandbox, per_page=5 if case.page > 1 else None)
        api = build_client(load_settings(config).systems[case.system])
        pages = []
        with pytest.raises(ApiError) as raised:
            for page in getattr(api, method)(updated_since=None):
                pages.append(page)
        api.close()
    error = raised.value
    assert case.reason in str(error) and len(str(error)) < 500, str(error)
    assert error.system == case.system and case.reason.startswith(f"{error.system}: {error.endpoint} ")
    assert len(pages) == case.page - 1  # the pages before the broken one, whole


@pytest.mark.parametrize("system", ["fakturownia", "zoho"])
def test_a_run_whose_listings_break_fails_clearly_lands_nothing_of_them_and_keeps_the_cursors(system, tmp_path,
                                                                                              shared_instance):
    instance = shared_instance
    cases = [next(c for c in CASES if c.id == cid) for cid in RUN_CASES[system]]
    per_page = 5 if any(c.page > 1 for c in cases) else None
    with small_sandbox(3, 4, 4, 3) as sandbox:
        for case in cases:
            case.make(sandbox)
        config = config_for(system, tmp_path, sandbox, per_page=per_page)
        runs, summary = run_sync(config, instance)
    assert not summary["ok"]
    [run] = runs
    errors = [line for record in instance.all_logs(run.run_id, of_type={dg.DagsterEventType.STEP_FAILURE})
              if (line := failure_line(record.dagster_event))]
    assert len(errors) == len(cases), errors
    with connect(load_settings(config).warehouse_path) as conn:
        for case in cases:
            assert any(case.reason in e for e in errors), (case.id, errors)
            entity = entity_of(case)
            cursor = conn.execute("SELECT cursor_ts FROM sync.cursors WHERE system = ? AND entity = ?",
                                  [system, entity]).fetchone()
            raw = conn.execute(f"SELECT json_type(payload), source_id FROM raw.{system}_{entity}").fetchall()
            assert cursor is None, case.id  # the next run reads this listing again from where it was
            # only whole records of the pages before the broken one are kept (what was fetched is never lost)
            assert len(raw) == (per_page or 0) * (case.page - 1), (case.id, raw)
            assert all(kind == "OBJECT" and sid for kind, sid in raw), (case.id, raw)
        staged = conn.execute("SELECT count(*) FROM staging.invoices").fetchone()[0]
    assert staged == 0 and "staging/invoices" not in run.materializations  # no staging on half a read
