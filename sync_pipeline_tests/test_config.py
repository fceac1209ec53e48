"""sync.yaml → typed settings: interpolation, defaults, and errors that name file and key, never a secret."""

from pathlib import Path

import pytest

from sync_pipeline.config import DEFAULT_DEAL_KINDS, ConfigError, load_settings

REPO = Path(__file__).resolve().parents[1]
SECRET = "s3cr3t-t0ken/acme"


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "sync.yaml"
    p.write_text(text)
    return p


BASE = """
systems:
  fi:
    type: invoiceocean
    account: acme
    api_token: ${IO_TOKEN}
  crm:
    type: sugester
    account: acme
    api_token: ${CRM_TOKEN}
connections:
  io_to_crm:
    source: fi
    target: crm
"""


def test_repository_default_config_points_at_the_sandbox():
    s = load_settings(REPO / "sync.yaml", env={"SYNC_SANDBOX_URL": "http://127.0.0.1:9"})
    f = s.systems["fakturownia"]
    assert f.resolved_base_url() == "http://127.0.0.1:9/fakturownia"
    assert s.sandbox is not None
    c = s.connections["fakturownia_to_sugester"]
    assert c.deal_kinds == DEFAULT_DEAL_KINDS and c.cron == "0 */3 * * *"


def test_types_defaults_and_domains(tmp_path):
    s = load_settings(_write(tmp_path, BASE), env={"IO_TOKEN": SECRET, "CRM_TOKEN": "x"})
    assert s.systems["fi"].resolved_base_url() == "https://acme.invoiceocean.com"
    assert s.systems["crm"].resolved_base_url() == "https://acme.sugester.pl"
    assert s.systems["fi"].api_token.get_secret_value() == SECRET
    assert SECRET not in repr(s) and SECRET not in str(s.model_dump())
    conn = s.connections["io_to_crm"]
    assert conn.schedule == "every_3_hours" and conn.dry_run is False
    assert conn.deal_kinds == ("vat", "vat_margin", "advance", "final", "receipt")


def test_env_default_syntax(tmp_path):
    p = _write(tmp_path, BASE.replace("${CRM_TOKEN}", "${CRM_TOKEN:-fallback}"))
    s = load_settings(p, env={"IO_TOKEN": "a"})
    assert s.systems["crm"].api_token.get_secret_value() == "fallback"


def test_missing_env_names_file_key_and_variable(tmp_path):
    p = _write(tmp_path, BASE)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a"})
    assert str(e.value) == f"{p}: systems.crm.api_token: environment variable CRM_TOKEN is not set"
    # definitions may load without secrets
    assert load_settings(p, env={}, strict=False).connections["io_to_crm"].source == "fi"


@pytest.mark.parametrize("change, key, problem", [
    (("schedule", "hourly"), "connections.io_to_crm.schedule", "Input should be 'nightly', 'every_3_hours' or 'manual'"),
    (("deal_kinds", "[vat, invoice]"), "connections.io_to_crm.deal_kinds", "unknown document kind(s) invoice"),
    (("history_start", "2025-02-30"), "connections.io_to_crm.history_start", "day value is outside expected range"),
])
def test_bad_connection_values_name_the_key(tmp_path, change, key, problem):
    p = _write(tmp_path, BASE + f"    {change[0]}: {change[1]}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value).startswith(f"{p}: {key}: ")
    assert problem in str(e.value)


def test_unknown_system_reference(tmp_path):
    p = _write(tmp_path, BASE.replace("target: crm", "target: nope"))
    with pytest.raises(ConfigError, match=r"connections.io_to_crm.target: no system named 'nope'"):
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})


def test_a_secret_in_a_bad_field_is_not_echoed(tmp_path):
    p = _write(tmp_path, BASE.replace("account: acme\n    api_token: ${IO_TOKEN}",
                                      "account: acme\n    api_token: ${IO_TOKEN}\n    timeout_seconds: ${IO_TOKEN}"))
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": SECRET, "CRM_TOKEN": "b"})
    assert "systems.fi.timeout_seconds" in str(e.value)
    assert SECRET not in str(e.value) and SECRET not in repr(e.value)


def test_unknown_key_and_bad_yaml(tmp_path):
    p = _write(tmp_path, BASE.replace("    account: acme\n    api_token: ${IO_TOKEN}", "    acount: acme\n    api_token: ${IO_TOKEN}"))
    with pytest.raises(ConfigError, match=r"systems.fi.acount: Extra inputs are not permitted"):
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    p.write_text("systems: [\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line"):
        load_settings(p)


def test_source_and_target_roles(tmp_path):
    p = _write(tmp_path, BASE.replace("source: fi", "source: crm"))
    with pytest.raises(ConfigError, match=r"'crm' \(sugester\) cannot be a source"):
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
