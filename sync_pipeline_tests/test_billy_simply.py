"""Billy ↔ Simply CRM (issue 11) end to end over real HTTP against the sandbox's simulators: each direction moves
organisations, contacts, products, invoices and credit notes; `both` settles a conflict by the winner; a custom
mapping changes the fields written; invoice_link changes what an invoice is attached to; one record on demand
touches only it and what it needs; an expired Simply session is renewed once; nothing changed, nothing written."""

from __future__ import annotations

from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
import yaml

from sync_pipeline_tests.conftest import TODAY

CONN = "billy_simply"
B_TOKEN, S_KEY = "test-billy-token", "test-simply-key"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
SIMPLY_WRITES = ("create", "revise", "update", "delete")
SOURCES = [["billy", "clients"], ["billy", "invoice_changes"], ["billy", "products"], ["simply", "accounts"],
           ["simply", "contacts"], ["simply", "products"], ["simply", "invoices"]]
ENTITIES = ("organisations", "contacts", "products", "invoices", "credit_notes")


@pytest.fixture
def sandbox():
    from sync_pipeline.sandbox.demo_data import DemoSpec
    from sync_pipeline.sandbox.server import Sandbox

    with Sandbox(spec=DemoSpec(seed=7, clients=5, invoices_per_client=2, months=6, today=TODAY),
                 billy_token=B_TOKEN, simply_access_key=S_KEY) as sb:
        yield sb


def config(tmp_path, url, **connection) -> object:
    doc = {
        "warehouse": {"path": str(tmp_path / "warehouse.duckdb")},
        "metrics": {"reporting_currency": "DKK", "fx_rates": {"EUR": 7.46, "PLN": 1.72}},
        "systems": {
            "billy": {"type": "billy", "base_url": f"{url}/billy/v2", "access_token": "${SYNC_TEST_BILLY:-" + B_TOKEN + "}",
                      "key_scan_every": "0s", "retry": {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.05}},
            "simply": {"type": "simply_crm", "base_url": f"{url}/simply", "username": "admin",
                       "access_key": "${SYNC_TEST_SIMPLY:-" + S_KEY + "}", "key_scan_every": "0s",
                       "retry": {"max_attempts": 3, "base_delay": 0.01, "max_delay": 0.05}},
        },
        "connections": {CONN: {"source": "billy", "target": "simply", "schedule": "manual",
                               "history_start": "2025-06-01", **connection}},
    }
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sync(path, instance, *, ok: bool = True):
    """The two-way entities alone (both sides' reads and the five entities): counts per entity."""
    from sync_pipeline.cli.report import asset_metadata, first_error, two_way_counts
    from sync_pipeline.defs.build import build_definitions
    from sync_pipeline.defs.resources import run_options_config
    from sync_pipeline.defs.schedules import job_name

    steps = [dg.AssetKey(k) for k in SOURCES] + [dg.AssetKey([CONN, e]) for e in ENTITIES]
    result = build_definitions(path).resolve_job_def(job_name(CONN)).execute_in_process(
        instance=instance, asset_selection=steps, run_config=run_options_config(as_of=TODAY), raise_on_error=False)
    if ok:
        assert result.success, first_error(result.all_events)
    meta = asset_metadata(result.all_events)
    return SimpleNamespace(ok=result.success, error=None if result.success else first_error(result.all_events),
                           meta=meta, **{e: two_way_counts(meta.get(f"{CONN}/{e}")) for e in ENTITIES})


def clear(sandbox) -> None:
    sandbox.billy.clear_requests()
    sandbox.simply.clear_requests()


def writes(sandbox) -> dict[str, int]:
    return {"billy": sum(1 for r in sandbox.billy.requests() if r.method in WRITES),
            "simply": sum(sandbox.simply.operation_count(op) for op in SIMPLY_WRITES)}


def billy_counts(sandbox) -> dict[str, int]:
    return sandbox.billy.record_counts()


def query(path, sql, params=()):
    doc = yaml.safe_load(path.read_text())
    with duckdb.connect(doc["warehouse"]["path"], read_only=True) as conn:
        return conn.execute(sql, params).fetchall()


def twin(path, entity, billy_id=None, simply_id=None) -> str:
    """The other side's id of a linked record."""
    if billy_id is not None:
        return query(path, "SELECT b_id FROM sync.links WHERE connection = ? AND entity = ? AND a_id = ?",
                     (CONN, entity, billy_id))[0][0]
    return query(path, "SELECT a_id FROM sync.links WHERE connection = ? AND entity = ? AND b_id = ?",
                 (CONN, entity, simply_id))[0][0]


def approved(sandbox, kind: str) -> list[dict]:
    return [i for i in sandbox.billy.records("invoices") if i["state"] == "approved"
            and (i.get("type") == "creditNote") == (kind == "credit_notes")]


def test_billy_to_simply_moves_every_entity_with_the_standard_mapping_then_writes_nothing(tmp_path, sandbox,
                                                                                          instance):
    path = config(tmp_path, sandbox.url, direction="billy_to_simply")
    before = sandbox.simply.record_counts()
    companies = [c for c in sandbox.billy.records("contacts") if c["type"] == "company"]
    persons = [c for c in sandbox.billy.records("contacts") if c["type"] == "person"]
    products = sandbox.billy.records("products")
    first = sync(path, instance)
    after = sandbox.simply.record_counts()
    assert after == {"organisations": before["organisations"] + len(companies),
                     "contacts": before["contacts"] + len(persons),
                     "products": before["products"] + len(products),
                     "invoices": before["invoices"] + len(approved(sandbox, "invoices")),
                     "credit_notes": before["credit_notes"] + len(approved(sandbox, "credit_notes"))}
    assert first.organisations["per_side"]["simply"]["created"] == len(companies)
    # nothing goes the other way: Simply's own records are reported, not created in Billy
    assert first.organisations["per_side"]["billy"]["created"] == 0 and first.organisations["divergent"] > 0

    # the standard mapping, field by field
    company = companies[0]
    account = next(a for a in sandbox.simply.records("Accounts")
                   if a["id"] == twin(path, "organisations", billy_id=company["id"]))
    primary = next(p for p in company["contactPersons"] if p.get("isPrimary"))
    assert (account["accountname"], account["email1"], account["bill_city"], account["bill_code"]) == (
        company["name"], primary["email"], company["cityText"], company["zipcodeText"])
    invoice = approved(sandbox, "invoices")[0]
    crm = next(i for i in sandbox.simply.records("Invoice") if i["id"] == twin(path, "invoices", billy_id=invoice["id"]))
    assert crm["account_id"] == twin(path, "organisations", billy_id=invoice["contactId"])
    assert crm["invoicedate"] == invoice["entryDate"] and crm["duedate"] == invoice["dueDate"]
    assert [line["productid"] for line in crm["LineItems"]] == [
        twin(path, "products", billy_id=line["productId"]) for line in invoice["lines"]]
    assert (crm["invoicestatus"] == "Paid") == bool(invoice["isPaid"])
    credit = approved(sandbox, "credit_notes")[0]
    crm_credit = next(i for i in sandbox.simply.records("Invoice")
                      if i["id"] == twin(path, "credit_notes", billy_id=credit["id"]))
    assert crm_credit["invoicestatus"] == "Credit Invoice"

    clear(sandbox)
    second = sync(path, instance)
    assert writes(sandbox) == {"billy": 0, "simply": 0}
    assert all(getattr(second, e)["per_side"]["simply"]["created"] == 0 for e in ENTITIES)


def test_simply_to_billy_moves_every_entity_then_writes_nothing(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, direction="simply_to_billy")
    counts = sandbox.simply.record_counts()
    before = billy_counts(sandbox)
    sync(path, instance)
    after = billy_counts(sandbox)
    assert after["companies"] == before["companies"] + counts["organisations"]
    assert after["persons"] == before["persons"] + counts["contacts"]
    assert after["products"] == before["products"] + counts["products"]
    assert after["invoices"] == before["invoices"] + counts["invoices"]
    assert after["credit_notes"] == before["credit_notes"] + counts["credit_notes"]
    assert sum(sandbox.simply.operation_count(op) for op in SIMPLY_WRITES) == 0

    account = sandbox.simply.records("Accounts")[0]
    company = next(c for c in sandbox.billy.records("contacts")
                   if c["id"] == twin(path, "organisations", simply_id=account["id"]))
    assert (company["type"], company["name"], company["countryId"]) == ("company", account["accountname"], "DK")
    assert company["contactPersons"][0]["email"] == account["email1"]
    contact = next(c for c in sandbox.simply.records("Contacts") if c["firstname"])
    person = next(c for c in sandbox.billy.records("contacts")
                  if c["id"] == twin(path, "contacts", simply_id=contact["id"]))
    assert person["type"] == "person" and person["name"] == f"{contact['firstname']} {contact['lastname']}"
    crm = next(i for i in sandbox.simply.records("Invoice") if i["invoicestatus"] != "Credit Invoice")
    bill = next(i for i in sandbox.billy.records("invoices") if i["id"] == twin(path, "invoices", simply_id=crm["id"]))
    assert bill["externalId"] == f"simply:{crm['id']}" and bill["state"] == "approved"
    assert bill["contactId"] == twin(path, "organisations", simply_id=crm["account_id"])  # invoice_link organisations
    assert [(line["productId"], float(line["quantity"])) for line in bill["lines"]] == [
        (twin(path, "products", simply_id=item["productid"]), float(item["quantity"])) for item in crm["LineItems"]]

    clear(sandbox)
    sync(path, instance)
    assert writes(sandbox) == {"billy": 0, "simply": 0}


@pytest.mark.parametrize("winner", ["simply", "billy"])
def test_both_a_record_edited_on_both_sides_ends_with_the_winners_values_and_the_loser_kept(tmp_path, sandbox,
                                                                                           instance, winner):
    path = config(tmp_path, sandbox.url, direction="both", winner=winner)
    sync(path, instance)
    company = next(c for c in sandbox.billy.records("contacts") if c["type"] == "company")
    account_id = twin(path, "organisations", billy_id=company["id"])
    sandbox.billy.user_edit("contacts", company["id"], cityText="Aarhus C")
    sandbox.simply.user_edit(account_id, bill_city="Aalborg")
    result = sync(path, instance)
    kept = {"simply": "Aalborg", "billy": "Aarhus C"}[winner]
    assert next(c for c in sandbox.billy.records("contacts") if c["id"] == company["id"])["cityText"] == kept
    assert next(a for a in sandbox.simply.records("Accounts") if a["id"] == account_id)["bill_city"] == kept
    [(won, a_values, b_values, reason)] = query(
        path, "SELECT winner, a_values, b_values, reason FROM sync.conflicts WHERE connection = ?", (CONN,))
    assert (won, reason) == (winner, "both_changed")
    assert '"Aarhus C"' in a_values and '"Aalborg"' in b_values
    assert result.organisations["conflicts"] == 1
    clear(sandbox)
    again = sync(path, instance)
    assert writes(sandbox) == {"billy": 0, "simply": 0}
    assert again.organisations["conflicts"] == 0


def test_a_new_record_on_each_side_appears_on_the_other_once(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, direction="both")
    sync(path, instance)
    sandbox.billy.user_add("products", name="Vinduespudsning, ekstra", productNo="VP-99",
                           prices=[{"unitPrice": 450, "currencyId": "DKK"}])
    sandbox.simply.user_create("Products", productname="Serviceaftale", productcode="SA-1", unit_price="1200")
    result = sync(path, instance)
    assert result.products["per_side"] == {"billy": {**result.products["per_side"]["billy"], "created": 1},
                                           "simply": {**result.products["per_side"]["simply"], "created": 1}}
    assert [p["unit_price"] for p in sandbox.simply.records("Products") if p["productcode"] == "VP-99"] == [
        "450.00000000"]
    assert [p["prices"][0]["unitPrice"] for p in sandbox.billy.records("products") if p["productNo"] == "SA-1"] == [
        1200]
    clear(sandbox)
    sync(path, instance)
    assert writes(sandbox) == {"billy": 0, "simply": 0}


def test_a_custom_mapping_changes_the_fields_written(tmp_path, sandbox, instance):
    mapping = {"organisations": [{"billy": "name", "simply": "accountname"},
                                 {"billy": "registrationNo", "simply": "cf_851"}]}
    path = config(tmp_path, sandbox.url, direction="billy_to_simply", mapping=mapping)
    sync(path, instance)
    company = next(c for c in sandbox.billy.records("contacts") if c["type"] == "company" and c.get("registrationNo"))
    account = next(a for a in sandbox.simply.records("Accounts")
                   if a["id"] == twin(path, "organisations", billy_id=company["id"]))
    # the pairs are written, the standard fields the map leaves out are not
    assert (account["accountname"], account["cf_851"]) == (company["name"], company["registrationNo"])
    assert account["email1"] == "" and account["bill_city"] == ""
    # the other entities keep the standard mapping
    assert all(c["email"] for c in sandbox.simply.records("Contacts")
               if c["id"] in {twin(path, "contacts", billy_id=p["id"]) for p in sandbox.billy.records("contacts")
                              if p["type"] == "person" and p.get("contactPersons")})


def test_a_mapping_to_a_custom_field_the_instance_lacks_fails_the_step_naming_it(tmp_path, sandbox, instance):
    mapping = {"organisations": [{"billy": "registrationNo", "simply": "cf_999"}]}
    path = config(tmp_path, sandbox.url, direction="billy_to_simply", mapping=mapping)
    result = sync(path, instance, ok=False)
    assert not result.ok and "mapping.organisations: simply has no field 'cf_999'" in result.error
    assert sum(sandbox.simply.operation_count(op) for op in SIMPLY_WRITES) == 0


@pytest.mark.parametrize("link, expected_type", [("organisations", "company"), ("contacts", "person")])
def test_invoice_link_decides_what_an_invoice_is_attached_to(tmp_path, sandbox, instance, link, expected_type):
    path = config(tmp_path, sandbox.url, direction="simply_to_billy", invoice_link=link)
    sync(path, instance)
    crm = next(i for i in sandbox.simply.records("Invoice") if i["contact_id"] and i["account_id"]
               and i["invoicestatus"] != "Credit Invoice")
    bill = next(i for i in sandbox.billy.records("invoices") if i["id"] == twin(path, "invoices", simply_id=crm["id"]))
    customer = next(c for c in sandbox.billy.records("contacts") if c["id"] == bill["contactId"])
    assert customer["type"] == expected_type
    expected = (twin(path, "organisations", simply_id=crm["account_id"]) if link == "organisations"
                else twin(path, "contacts", simply_id=crm["contact_id"]))
    assert bill["contactId"] == expected


def test_sync_record_touches_exactly_that_record_and_what_it_needs(tmp_path, sandbox, instance, monkeypatch):
    from sync_pipeline.cli.sync_record import sync_record

    path = config(tmp_path, sandbox.url, direction="both")
    sync(path, instance)
    company = sandbox.billy.user_add("contacts", type="company", name="Nyhavn Cykler ApS", countryId="DK",
                                     cityText="København K", contactPersons=[{"name": "Ida", "email": "ida@nyhavn.dk",
                                                                              "isPrimary": True}])
    product = sandbox.billy.user_add("products", name="Cykelservice", productNo="CS-1",
                                     prices=[{"unitPrice": 600, "currencyId": "DKK"}])
    invoice = sandbox.billy.user_add("invoices", contactId=company["id"], entryDate=TODAY.isoformat(),
                                     paymentTermsDays=14, currencyId="DKK", state="approved",
                                     lines=[{"productId": product["id"], "quantity": 2, "unitPrice": 600}])
    # bystanders: changed too, but not needed by the invoice
    other = sandbox.billy.user_add("contacts", type="company", name="Bystander ApS", countryId="DK")
    some_account = sandbox.simply.records("Accounts")[0]
    sandbox.simply.user_edit(some_account["id"], bill_city="Odense")
    clear(sandbox)
    out = sync_record(path, CONN, "invoices", invoice["id"], instance=instance)
    assert out["ok"], out.get("error")
    needed = {f"/v2/invoices/{invoice['id']}", f"/v2/contacts/{company['id']}", f"/v2/products/{product['id']}"}
    billy_paths = {r.path for r in sandbox.billy.requests()}
    assert needed <= billy_paths <= needed | {"/v2/organization"}  # no list read: only these records
    assert not [r for r in sandbox.billy.requests() if r.method in WRITES]
    created = [r for r in sandbox.simply.requests() if r.method == "POST" and b"operation=create" in r.body]
    assert len(created) == 3  # the organisation, the product, the invoice: nothing else
    names = {a["accountname"] for a in sandbox.simply.records("Accounts")}
    assert "Nyhavn Cykler ApS" in names and "Bystander ApS" not in names
    assert sandbox.simply.operation_count("revise") == 0  # the edited account was not needed: left for the next run
    assert sandbox.simply.operation_count("sync") == sandbox.simply.operation_count("query") == 0  # no list read
    assert out["record"]["needed"] == {"invoices": [invoice["id"]], "organisations": [company["id"]],
                                       "products": [product["id"]]}
    assert other  # created in Billy only


def test_an_expired_simply_session_is_renewed_once_and_the_run_goes_on(tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, direction="both")
    sync(path, instance)
    sandbox.billy.user_add("products", name="Ekstra", productNo="EX-1", prices=[{"unitPrice": 100, "currencyId": "DKK"}])
    clear(sandbox)
    sync(path, instance)
    logins_without = sandbox.simply.operation_count("login")
    sandbox.billy.user_add("products", name="Ekstra 2", productNo="EX-2", prices=[{"unitPrice": 200, "currencyId": "DKK"}])
    clear(sandbox)
    sandbox.simply.expire_sessions_after(3)
    result = sync(path, instance)
    assert sandbox.simply.operation_count("login") == logins_without + 1
    assert result.products["per_side"]["simply"]["created"] == 1
    assert [p["productcode"] for p in sandbox.simply.records("Products") if p["productcode"].startswith("EX-")] == [
        "EX-1", "EX-2"]


def test_billy_invoices_feed_staging_and_the_metrics(tmp_path, sandbox, instance):
    from sync_pipeline_tests.conftest import run_sync

    path = config(tmp_path, sandbox.url, direction="billy_to_simply")
    runs, summary = run_sync(path, instance)
    assert all(r.success for r in runs), [r.error for r in runs]
    invoices = sandbox.billy.records("invoices")
    staged = dict(query(path, "SELECT status, count(*) FROM staging.invoices WHERE source_instance = 'billy' "
                              "GROUP BY 1"))
    assert sum(staged.values()) == len(invoices)
    assert staged.get("paid", 0) >= len([i for i in invoices if i["state"] == "approved" and i.get("isPaid")])
    overdue = query(path, "SELECT count(*) FROM marts.account_metrics WHERE account_id LIKE 'billy:%' "
                          "AND overdue_invoice_count > 0")
    assert overdue[0][0] > 0


def test_an_edit_billys_change_reads_cannot_see_arrives_through_the_key_scan(tmp_path, sandbox, instance):
    """Billy has no updated-since filter: an old paid invoice edited is in none of the change reads; the key scan
    (every run here, key_scan_every 0s) reads whole invoices and lands them, so the edit arrives."""
    path = config(tmp_path, sandbox.url, direction="billy_to_simply")
    sync(path, instance)
    old = min((i for i in approved(sandbox, "invoices") if i["isPaid"]), key=lambda i: i["dueDate"])
    sandbox.billy.user_edit("invoices", old["id"], lineDescription="Hovedrengøring, rettet")
    clear(sandbox)
    result = sync(path, instance)
    assert result.invoices["per_side"]["simply"]["updated"] == 1
    crm = next(i for i in sandbox.simply.records("Invoice") if i["id"] == twin(path, "invoices", billy_id=old["id"]))
    assert crm["subject"] == "Hovedrengøring, rettet"


def test_an_invoice_simply_cannot_take_waits_blocked_with_its_reason_and_is_reported(tmp_path, sandbox, instance):
    """Simply needs a product on every line item [V]: a Billy invoice with a free-text line is blocked, named in
    the run's blocked_examples with the reason, written nowhere, and tried again on every run (nothing lost)."""
    path = config(tmp_path, sandbox.url, direction="billy_to_simply")
    sync(path, instance)
    company = next(c for c in sandbox.billy.records("contacts") if c["type"] == "company")
    free = sandbox.billy.user_add("invoices", contactId=company["id"], entryDate=TODAY.isoformat(),
                                  paymentTermsDays=14, currencyId="DKK", state="approved",
                                  lines=[{"description": "Kørsel", "quantity": 1, "unitPrice": 300}])
    clear(sandbox)
    for _ in range(2):
        result = sync(path, instance)
        assert result.invoices["blocked"] == 1
        [example] = result.meta[f"{CONN}/invoices"]["blocked_examples"]
        assert example["billy"] == free["id"] and example["detail"] == "lines: 1 without a product"
        assert sum(sandbox.simply.operation_count(op) for op in SIMPLY_WRITES) == 0
    assert query(path, "SELECT count(*) FROM sync.links WHERE connection = ? AND entity = 'invoices' AND a_id = ?",
                 (CONN, free["id"])) == [(0,)]


def test_an_invoice_whose_approval_was_lost_is_found_by_its_external_id_and_approved_not_created_again(
        tmp_path, sandbox, instance):
    path = config(tmp_path, sandbox.url, direction="simply_to_billy")
    sync(path, instance)
    account = sandbox.simply.records("Accounts")[0]
    product = sandbox.simply.records("Products")[0]
    new = sandbox.simply.user_create("Invoice", subject="Ekstra levering", account_id=account["id"],
                                     invoicedate=TODAY.isoformat(), duedate=TODAY.isoformat(), invoicestatus="Sent",
                                     bill_street="Søndergade 14", ship_street="Søndergade 14",
                                     LineItems=[{"productid": product["id"], "quantity": "1", "listprice": "500"}])
    # every approval (PUT) of this run fails: the create leaves a draft carrying our key in externalId
    sandbox.billy.fail_next(r"^/v2/invoices/", "500", times=3, method="PUT")
    result = sync(path, instance)
    assert result.invoices["per_side"]["billy"]["adopted"] == 1, result.invoices
    mine = [i for i in sandbox.billy.records("invoices") if i.get("externalId") == f"simply:{new['id']}"]
    assert len(mine) == 1 and mine[0]["state"] == "approved"
    clear(sandbox)
    sync(path, instance)
    assert writes(sandbox) == {"billy": 0, "simply": 0}
