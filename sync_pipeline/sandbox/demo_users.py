"""Deterministic demo users of the Fakturownia and Sugester simulators, built to show every case of the user
pairing report: identical users, a different e-mail, a different login, users on one side only, and an
e-mail that differs only in letter case (paired: e-mails compare case-insensitively)."""

from __future__ import annotations

# (login, Fakturownia e-mail, Sugester e-mail or None, Sugester login or None, first name, last name, role);
# None in both Sugester columns: only in Fakturownia.
_BOTH = (
    ("anna.kowalska", "anna.kowalska@demo-firma.pl", None, None, "Anna", "Kowalska", "admin"),
    ("piotr.nowak", "piotr.nowak@demo-firma.pl", None, None, "Piotr", "Nowak", "user"),
    ("marta.zielinska", "Marta.Zielinska@demo-firma.pl", "marta.zielinska@demo-firma.pl", None,
     "Marta", "Zielińska", "user"),
    ("tomasz.wojcik", "tomasz.wojcik@demo-firma.pl", "t.wojcik@demo-firma.pl", None, "Tomasz", "Wójcik", "user"),
    ("ewa.lewandowska", "ewa.lewandowska@demo-firma.pl", None, "elewandowska", "Ewa", "Lewandowska", "accountant"),
)
_ONLY_FAKTUROWNIA = (("jan.kaminski", "jan.kaminski@demo-firma.pl", "Jan", "Kamiński", "accountant"),)
_ONLY_SUGESTER = (("katarzyna.dabrowska", "katarzyna.dabrowska@demo-firma.pl", "Katarzyna Dąbrowska"),)


def fakturownia_users() -> list[dict]:
    """Records as the inferred `GET /users.json` serves them: {id, login, email, first_name, last_name, role}."""
    rows = [(login, email, first, last, role) for login, email, _, _, first, last, role in _BOTH]
    return [{"id": 1_200_001 + i, "login": login, "email": email, "first_name": first, "last_name": last,
             "role": role} for i, (login, email, first, last, role) in enumerate((*rows, *_ONLY_FAKTUROWNIA))]


def sugester_users() -> list[dict]:
    """Records as the inferred `GET /app/users.json` serves them: {id, login, email, name}."""
    rows = [(s_login or login, s_email or email, f"{first} {last}")
            for login, email, s_email, s_login, first, last, _ in _BOTH]
    return [{"id": 7_001 + i, "login": login, "email": email, "name": name}
            for i, (login, email, name) in enumerate((*rows, *_ONLY_SUGESTER))]
