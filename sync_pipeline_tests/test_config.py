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
    (("deal_kinds", "[vat, invoice]"), "connections.io_to_crm.deal_kinds[1]", "unknown document kind; known: "),
    (("history_start", "2025-02-30"), "connections.io_to_crm.history_start", "day value is outside expected range"),
    (("clients", "{winner: zoho}"), "connections.io_to_crm.clients.winner", "not a system of this connection; one of: fi, crm"),
    (("clients", "{direction: sideways}"), "connections.io_to_crm.clients.direction", "'a_to_b', 'b_to_a' or 'both'"),
    (("departments", "{7781: [1, 2]}"), "connections.io_to_crm.departments.7781", "a department id or name on each side"),
])
def test_bad_connection_values_name_the_key(tmp_path, change, key, problem):
    p = _write(tmp_path, BASE + f"    {change[0]}: {change[1]}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value).startswith(f"{p}: {key}: ")
    assert problem in str(e.value)


def test_two_way_options_default_to_both_ways_with_the_source_winning_and_accept_a_name_or_type(tmp_path):
    env = {"IO_TOKEN": "a", "CRM_TOKEN": "b"}
    conn = load_settings(_write(tmp_path, BASE), env=env).connections["io_to_crm"]
    assert (conn.clients.direction, conn.update_deals, conn.departments) == ("both", True, {})
    settings = load_settings(_write(tmp_path, BASE + "    clients: {winner: sugester}\n    departments: {7781: 301}\n"),
                             env=env)
    conn = settings.connections["io_to_crm"]
    assert conn.winner_side(settings.systems) == "b" and conn.departments == {"7781": "301"}


def test_unknown_system_reference(tmp_path):
    p = _write(tmp_path, BASE.replace("target: crm", "target: nope"))
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value) == f"{p}: connections.io_to_crm.target: no system by that name; systems: fi, crm"


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


# -- configuration errors never echo a value ---------------------------------------------------------

FULL = {
    "metrics": {"reporting_currency": "PLN", "fx_rates": {"EUR": 4.2},
                "alerts": [{"name": "a", "metric": "overdue_amount", "comparison": ">", "threshold": 1}]},
    "systems": {
        "fi": {"type": "invoiceocean", "account": "acme", "api_token": "${IO_TOKEN}"},
        "crm": {"type": "sugester", "account": "acme", "api_token": "${CRM_TOKEN}"},
        "zoho": {"type": "zoho_invoice", "dc": "eu", "organization_id": "1", "client_id": "${ZOHO_ID}",
                 "client_secret": "${ZOHO_SECRET}", "refresh_token": "${ZOHO_REFRESH}"},
        "csb": {"type": "customersuccessbox", "account": "acme", "api_key": "${CSB_KEY}"},
    },
    "connections": {
        "io_to_crm": {"source": "fi", "target": "crm"},
        "zoho_to_csb": {"source": "zoho", "target": "csb"},
    },
}
FULL_ENV = {"IO_TOKEN": "a", "CRM_TOKEN": "b", "ZOHO_ID": "c", "ZOHO_SECRET": "d", "ZOHO_REFRESH": "e", "CSB_KEY": "f"}


def _write_full(tmp_path, path: tuple = (), value=None) -> Path:
    """FULL as a file, with `value` put at `path` (a list index extends the list)."""
    import copy

    import yaml

    data = copy.deepcopy(FULL)
    if path:
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        if isinstance(node, list) and path[-1] >= len(node):
            node.append(value)
        else:
            node[path[-1]] = value
    return _write(tmp_path, yaml.safe_dump(data, sort_keys=False))


def test_the_full_example_loads(tmp_path):
    s = load_settings(_write_full(tmp_path), env=FULL_ENV)
    assert s.systems["zoho"].resolved_accounts_url() == "https://accounts.zoho.eu"


VALUE_POSITIONS = [
    (("systems", "fi", "type"), "systems.fi.type"),
    (("systems", "fi", "account"), "systems.fi.account"),
    (("systems", "fi", "base_url"), "systems.fi.base_url"),
    (("systems", "fi", "identifier"), "systems.fi.identifier"),
    (("systems", "fi", "reread_lag"), "systems.fi.reread_lag"),
    (("systems", "fi", "per_page"), "systems.fi.per_page"),
    (("systems", "fi", "timeout_seconds"), "systems.fi.timeout_seconds"),
    (("systems", "fi", "retry", "max_attempts"), "systems.fi.retry.max_attempts"),
    (("systems", "crm", "account"), "systems.crm.account"),
    (("systems", "csb", "account"), "systems.csb.account"),
    (("systems", "zoho", "dc"), "systems.zoho.dc"),
    (("systems", "zoho", "base_url"), "systems.zoho.base_url"),
    (("systems", "zoho", "accounts_url"), "systems.zoho.accounts_url"),
    (("systems", "zoho", "identifier_field"), "systems.zoho.identifier_field"),
    (("connections", "io_to_crm", "source"), "connections.io_to_crm.source"),
    (("connections", "io_to_crm", "target"), "connections.io_to_crm.target"),
    (("connections", "io_to_crm", "schedule"), "connections.io_to_crm.schedule"),
    (("connections", "io_to_crm", "deal_kinds"), "connections.io_to_crm.deal_kinds"),
    (("connections", "io_to_crm", "history_start"), "connections.io_to_crm.history_start"),
    (("connections", "io_to_crm", "dry_run"), "connections.io_to_crm.dry_run"),
    (("connections", "io_to_crm", "error_budget"), "connections.io_to_crm.error_budget"),
    (("connections", "io_to_crm", "metric_fields", "decimal1"), "connections.io_to_crm.metric_fields.decimal1"),
    (("metrics", "reporting_currency"), "metrics.reporting_currency"),
    (("metrics", "fx_rates", "EUR"), "metrics.fx_rates.EUR"),
    (("metrics", "health", "days_cap"), "metrics.health.days_cap"),
    (("metrics", "alerts", 0, "metric"), "metrics.alerts[0].metric"),
    (("metrics", "alerts", 0, "comparison"), "metrics.alerts[0].comparison"),
    (("metrics", "alerts", 0, "severity"), "metrics.alerts[0].severity"),
    (("metrics", "alerts", 0, "threshold"), "metrics.alerts[0].threshold"),
]


@pytest.mark.parametrize("via_env", [True, False], ids=["from_env", "literal"])
@pytest.mark.parametrize("path, key", VALUE_POSITIONS, ids=[k for _, k in VALUE_POSITIONS])
def test_errors_name_the_key_and_never_echo_the_value(tmp_path, path, key, via_env):
    value = "${LEAK}" if via_env else SECRET
    if path[-1] == "deal_kinds":
        value, key = ["vat", value], key + "[1]"
    p = _write_full(tmp_path, path, value)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={**FULL_ENV, "LEAK": SECRET})
    assert f"{p}: {key}: " in str(e.value)
    assert SECRET not in str(e.value) and SECRET not in repr(e.value)
    assert "s3cr3t" not in str(e.value)


@pytest.mark.parametrize("text", [
    "systems:\n  fi: {api_token: \"s3cr3t-t0ken/acme}\n",          # unterminated quote
    "systems:\n  fi:\n    api_token: !s3cr3t-t0ken/acme x\n",        # unknown tag
    "systems:\n  fi:\n    api_token: \"s3cr3t-t0ken\\q/acme\"\n",    # unknown escape
    "systems:\n  fi:\n    api_token: s3cr3t-t0ken/acme\n   bad: x\n",  # bad indentation
    "systems:\n  fi:\n    api_token: s3cr3t-t0ken/acme\t\x07\n",     # a character YAML refuses
])
def test_yaml_errors_do_not_quote_the_file(tmp_path, text):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={})
    assert str(e.value).startswith(f"{p}: ") and "line " in str(e.value)
    assert "s3cr3t" not in str(e.value)


def test_check_account_says_what_is_wrong_without_the_value():
    from sync_pipeline.connectors._token_param import check_account

    assert check_account("acme-2") == "acme-2"
    with pytest.raises(ValueError) as e:
        check_account(SECRET)
    assert SECRET not in str(e.value) and "s3cr3t" not in str(e.value)
    assert "subdomain" in str(e.value)


# -- duplicate keys ---------------------------------------------------------------------------------

def test_a_duplicate_key_is_rejected_with_line_and_path(tmp_path):
    twice = "    api_token: ${IO_TOKEN}\n    api_token: ${CRM_TOKEN}"
    p = _write(tmp_path, BASE.replace("    api_token: ${IO_TOKEN}", twice))
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value) == f"{p}: line 7: duplicate key 'api_token' in systems.fi"


def test_a_duplicate_top_level_or_list_item_key_is_rejected(tmp_path):
    p = _write(tmp_path, BASE + "systems: {}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value) == f"{p}: line 15: duplicate key 'systems' at the top level"
    p = _write(tmp_path, BASE + "metrics:\n  alerts:\n"
                             "    - {name: a, metric: total_due, metric: total_paid, comparison: '>', threshold: 1}\n")
    with pytest.raises(ConfigError) as e:
        load_settings(p, env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    assert str(e.value) == f"{p}: line 17: duplicate key 'metric' in metrics.alerts[0]"


def test_merge_keys_may_override_and_dates_stay_text(tmp_path):
    text = BASE.replace("  fi:\n    type: invoiceocean", "  fi: &fi\n    type: invoiceocean") + (
        "  io_to_crm_2:\n    source: fi\n    target: crm\n    <<: {schedule: nightly, dry_run: true}\n    schedule: manual\n"
        "    history_start: 2025-03-01\n")
    s = load_settings(_write(tmp_path, text), env={"IO_TOKEN": "a", "CRM_TOKEN": "b"})
    c = s.connections["io_to_crm_2"]
    assert c.schedule == "manual" and c.dry_run is True and str(c.history_start) == "2025-03-01"


# -- secrets are references -------------------------------------------------------------------------

@pytest.mark.parametrize("system, field", [("fi", "api_token"), ("crm", "api_token"), ("zoho", "client_secret"),
                                           ("zoho", "refresh_token"), ("csb", "api_key")])
@pytest.mark.parametrize("written", [SECRET, f"prefix-${{IO_TOKEN}}", f"${{IO_TOKEN}}{SECRET}", 12345])
def test_a_literal_secret_is_rejected_without_echo(tmp_path, system, field, written):
    p = _write_full(tmp_path, ("systems", system, field), written)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env=FULL_ENV)
    assert str(e.value) == (f"{p}: systems.{system}.{field}: write secrets as ${{ENV_VAR}} references, "
                            "not in the file")
    assert "s3cr3t" not in str(e.value) and "12345" not in str(e.value)


def test_a_secret_reference_may_carry_a_default(tmp_path):
    p = _write_full(tmp_path, ("systems", "fi", "api_token"), "${FAKTUROWNIA_API_TOKEN:-sandbox-token/demo}")
    s = load_settings(p, env=FULL_ENV)
    assert s.systems["fi"].api_token.get_secret_value() == "sandbox-token/demo"
    # the check reads the file as written: a reference whose variable holds anything is fine
    assert load_settings(p, env={**FULL_ENV, "FAKTUROWNIA_API_TOKEN": "x y"}).systems["fi"].api_token


def test_secret_fields_are_found_from_the_models():
    from pydantic import BaseModel, SecretStr

    from sync_pipeline.config import _secret_paths

    class Inner(BaseModel):
        password: SecretStr | None = None
        user: str = ""

    class Outer(BaseModel):
        token: SecretStr
        items: dict[str, Inner] = {}
        rules: tuple[Inner, ...] = ()
        extra: Inner | None = None

    raw = {"token": "${T}", "items": {"a": {"password": "literal", "user": "u"}, "b": {"password": None}},
           "rules": [{"password": "${P:-x}"}, {"password": "literal"}], "extra": {"password": "literal"}}
    assert list(_secret_paths(Outer, raw)) == [("items", "a", "password"), ("rules", 1, "password"),
                                               ("extra", "password")]


# -- URLs and accounts ------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["base_url", "accounts_url"])
@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/x", "//example.com/x", "http://", "https:///x",
                                 "example.com", "http://exa mple.com", "http://user:pw@example.com",
                                 "http://example.com:99999", "https://example.com/x?token=1"])
def test_urls_must_be_absolute_http_with_a_host(tmp_path, field, url):
    system = "zoho" if field == "accounts_url" else "fi"
    p = _write_full(tmp_path, ("systems", system, field), url)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env=FULL_ENV)
    assert str(e.value).startswith(f"{p}: systems.{system}.{field}: must be an absolute http(s) URL")
    assert url not in str(e.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/fakturownia", "https://acme.fakturownia.pl",
                                 "https://acme.fakturownia.pl/", "http://[::1]:8080/x", "HTTPS://Example.COM"])
def test_good_urls_load(tmp_path, url):
    p = _write_full(tmp_path, ("systems", "fi", "base_url"), url)
    assert load_settings(p, env=FULL_ENV).systems["fi"].resolved_base_url() == url.rstrip("/")


def test_an_unresolved_url_reference_loads_only_when_not_strict(tmp_path):
    p = _write_full(tmp_path, ("systems", "zoho", "accounts_url"), "${SANDBOX}/zoho-accounts")
    s = load_settings(p, env=FULL_ENV, strict=False)
    assert s.systems["zoho"].accounts_url == "${SANDBOX}/zoho-accounts"
    assert load_settings(p, env={**FULL_ENV, "SANDBOX": "http://127.0.0.1:5"}).systems["zoho"].accounts_url
    with pytest.raises(ConfigError, match=r"systems.zoho.accounts_url: must be an absolute http\(s\) URL"):
        load_settings(p, env={**FULL_ENV, "SANDBOX": "127.0.0.1:5"})


@pytest.mark.parametrize("account", ["acme.fakturownia.pl", "https://acme.fakturownia.pl", "ac me", "-acme",
                                     "acme/x", ""])
def test_account_must_be_a_bare_subdomain_label(tmp_path, account):
    p = _write_full(tmp_path, ("systems", "fi", "account"), account)
    with pytest.raises(ConfigError) as e:
        load_settings(p, env=FULL_ENV)
    assert str(e.value).startswith(f"{p}: systems.fi.account: ")
    assert "subdomain" in str(e.value)
    assert not account or account not in str(e.value)


def test_an_unresolved_account_reference_loads_only_when_not_strict(tmp_path):
    p = _write_full(tmp_path, ("systems", "fi", "account"), "${ACCOUNT}")
    assert load_settings(p, env=FULL_ENV, strict=False).systems["fi"].account == "${ACCOUNT}"
    assert load_settings(p, env={**FULL_ENV, "ACCOUNT": "acme"}).systems["fi"].resolved_base_url() == \
        "https://acme.invoiceocean.com"
