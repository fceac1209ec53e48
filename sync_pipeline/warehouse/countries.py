"""Country names and codes as people type them → ISO 3166-1 alpha-2, for `staging.accounts.country_code`.

Invoicing systems keep the country as free text ("Czech Republic", "Polska", "DE", "", null). What is written
to targets stays as the user typed it; the code is a separate column for analysis, NULL when the text is not
recognised. Recognised: ISO codes (alpha-2 and alpha-3), the ISO names (short, official, common, from
pycountry), and the names people type in the markets the product serves (Polish and native names, usual
English variants). Matching ignores case, accents, dots and repeated spaces (`country_key` in SQL and
`normalise` here do the same).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import pycountry

# Names pycountry does not know, as typed in Fakturownia, Zoho and the CRMs (Polish, native, colloquial).
EXTRA_NAMES: dict[str, tuple[str, ...]] = {
    "AT": ("Austria", "Österreich"),
    "BE": ("Belgia", "België", "Belgique"),
    "CH": ("Szwajcaria", "Schweiz", "Suisse", "Svizzera"),
    "CZ": ("Czech Republic", "Czechy", "Česko", "Česká republika", "Czech Rep"),
    "DE": ("Niemcy", "Deutschland"),
    "DK": ("Dania", "Danmark"),
    "EE": ("Estonia", "Eesti"),
    "ES": ("Hiszpania", "España"),
    "FI": ("Finlandia", "Suomi"),
    "FR": ("Francja",),
    "GB": ("UK", "Great Britain", "Britain", "England", "Scotland", "Wales", "Northern Ireland", "Wielka Brytania",
           "Anglia"),
    "GR": ("Grecja", "Ελλάδα"),
    "HR": ("Chorwacja", "Hrvatska"),
    "HU": ("Węgry", "Magyarország"),
    "IE": ("Irlandia", "Éire"),
    "IT": ("Włochy", "Italia"),
    "LT": ("Litwa", "Lietuva"),
    "LV": ("Łotwa", "Latvija"),
    "NL": ("Holandia", "Holland", "Niderlandy", "Nederland", "The Netherlands"),
    "NO": ("Norwegia", "Norge"),
    "PL": ("Polska",),
    "PT": ("Portugalia",),
    "RO": ("Rumunia", "România"),
    "RU": ("Rosja", "Russia", "Россия"),
    "SE": ("Szwecja", "Sverige"),
    "SI": ("Słowenia", "Slovenija"),
    "SK": ("Słowacja", "Slovensko", "Slovak Republic"),
    "TR": ("Turcja", "Turkey"),
    "UA": ("Ukraina", "Україна"),
    "US": ("USA", "US", "U.S.A.", "United States of America", "America", "Stany Zjednoczone"),
}


def normalise(text: str) -> str:
    """The matching key: no accents, no dots, single spaces, lower case (as `country_key` in SQL)."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace(".", "")
    return re.sub(r"\s+", " ", bare).strip().lower()


@lru_cache(maxsize=1)
def country_aliases() -> dict[str, str]:
    """Every recognised spelling, normalised → its ISO 3166-1 alpha-2 code."""
    out: dict[str, str] = {}
    for country in pycountry.countries:
        for attr in ("alpha_2", "alpha_3", "name", "official_name", "common_name"):
            value = getattr(country, attr, None)
            if value:
                out.setdefault(normalise(value), country.alpha_2)
    for code, names in EXTRA_NAMES.items():
        for name in names:
            out.setdefault(normalise(name), code)
    return out
