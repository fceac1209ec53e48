"""The Billy ↔ Simply CRM connection's options in sync.yaml: direction and winner by system name or type, a custom
field mapping checked at load against the fields each side has (an unknown field is named), invoice_link."""

import pytest

from sync_pipeline.config import ConfigError, load_settings

ENV = {"BILLY": "t", "SIMPLY": "k"}
BASE = """
systems:
  billy:
    type: billy
    access_token: ${BILLY}
  simply:
    type: simply_crm
    account: acme
    access_key: ${SIMPLY}
connections:
  billy_simply:
    source: billy
    target: simply
"""


def _load(tmp_path, extra: str = ""):
    p = tmp_path / "sync.yaml"
    p.write_text(BASE + extra)
    return p, load_settings(p, env=ENV)


def test_defaults_both_ways_standard_mapping_organisations_and_the_targets_schedule(tmp_path):
    _, s = _load(tmp_path)
    c = s.connections["billy_simply"]
    assert (c.direction_code(s.systems), c.mapping, c.invoice_link, c.schedule) == (
        "both", "standard", "organisations", "every_3_hours")
    assert c.winner_side(s.systems) == "a" and c.custom_fields("organisations") == ()
    assert s.systems["simply"].resolved_base_url() == "https://acme.simply-crm.com"
    assert s.systems["billy"].resolved_base_url() == "https://api.billysbilling.com/v2"


@pytest.mark.parametrize("direction, code", [("simply_to_billy", "b_to_a"), ("billy_to_simply", "a_to_b"),
                                             ("simply_crm_to_billy", "b_to_a"), ("both", "both")])
def test_direction_by_system_name_or_type(tmp_path, direction, code):
    _, s = _load(tmp_path, f"    direction: {direction}\n    winner: simply\n    schedule: manual\n")
    c = s.connections["billy_simply"]
    assert c.direction_code(s.systems) == code and c.winner_side(s.systems) == "b" and c.cron is None


@pytest.mark.parametrize("extra, key, problem", [
    ("    direction: billy_to_zoho\n", "connections.billy_simply.direction", "one of billy_to_simply, simply_to_billy"),
    ("    direction: billy_to_billy\n", "connections.billy_simply.direction", "one of billy_to_simply"),
    ("    winner: zoho\n", "connections.billy_simply.winner", "not a system of this connection; one of: billy, simply"),
    ("    invoice_link: deals\n", "connections.billy_simply.invoice_link", "'organisations' or 'contacts'"),
    ("    mapping:\n      organisations:\n        - {billy: name, simply: acountname}\n",
     "connections.billy_simply.mapping.organisations[0].simply", "simply has no organisations field 'acountname'"),
    ("    mapping:\n      organisations:\n        - {billy: email, simply: email1}\n",
     "connections.billy_simply.mapping.organisations[0].billy", "billy has no organisations field 'email'"),
    ("    mapping:\n      deals:\n        - {billy: name, simply: accountname}\n",
     "connections.billy_simply.mapping.deals", "not an entity both systems sync; one of: organisations, contacts"),
    ("    mapping:\n      products:\n        - {billy: name}\n",
     "connections.billy_simply.mapping.products[0]", "a pair of fields: {billy: <field>, simply: <field>}"),
])
def test_bad_options_fail_at_load_naming_the_key_and_the_field(tmp_path, extra, key, problem):
    p = tmp_path / "sync.yaml"
    p.write_text(BASE + extra)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env=ENV)
    assert str(e.value).startswith(f"{p}: {key}: "), str(e.value)
    assert problem in str(e.value)


def test_a_custom_mapping_names_pairs_and_accepts_the_instances_custom_fields(tmp_path):
    _, s = _load(tmp_path, "    mapping:\n      organisations:\n        - {billy: name, simply: accountname}\n"
                           "        - {billy: registrationNo, simply: cf_851}\n")
    c = s.connections["billy_simply"]
    assert c.custom_fields("organisations") == (("name|accountname", "name", "accountname"),
                                                ("registrationNo|cf_851", "registrationNo", "cf_851"))
    assert c.custom_fields("contacts") == ()
