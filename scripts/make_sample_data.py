"""Write the sample tenants into data/landing (deterministic: same bytes on every run).

    uv run python scripts/make_sample_data.py [ROOT]

- acme:     the exact contract format, all three files.
- globex:   deals.csv only, account data inline; no accounts.csv, no contacts.csv.
- initech:  a European export: UTF-8 BOM, `;`, CRLF, 31.12.2026 dates, `1.234,56 €`,
            headers in odd case, an extra column, a cp1252 accounts.csv and bad rows.
- umbrella: an Excel "Unicode text" export with another CRM's labels: UTF-16, tabs,
            12/31/2026 dates, `$1,234.56` and accounting negatives; owners exported by
            name (`Deal Owner`), turned into e-mails by the CRM's user export, users.csv.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from datetime import date, timedelta
from pathlib import Path

COMPANIES = [
    ("Northwind Traders", "northwind.example", "Retail"),
    ("Contoso Ltd", "contoso.example", "Software"),
    ("Fabrikam Inc", "fabrikam.example", "Manufacturing"),
    ("Tailspin Toys", "tailspin.example", "Retail"),
    ("Wide World Importers", "wideworld.example", "Logistics"),
    ("Adventure Works", "adventure-works.example", "Outdoor"),
    ("Litware Inc", "litware.example", "Software"),
    ("Proseware Inc", "proseware.example", "Publishing"),
    ("Müller Maschinenbau GmbH", "mueller-maschinen.example", "Manufacturing"),
    ("Société Générale d'Études", "sge-etudes.example", "Consulting"),
]
FIRST = [
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Eva",
    "Femi",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
]
LAST = [
    "Alvarez",
    "Brown",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "García",
    "Hansen",
    "Ito",
    "Jansen",
]
STAGES = ["Discovery", "Proposal", "Negotiation", "Closed Won"]
ROLES = ["CTO", "VP Sales", "Head of IT", "Procurement", "Champion"]


def _csv(rows: list[list[str]], delimiter: str = ",", line_end: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=line_end).writerows(rows)
    return out.getvalue()


def _close(rng: random.Random) -> date:
    return date(2026, 12, 1) + timedelta(days=rng.randrange(0, 365))


def acme(rng: random.Random) -> dict[str, bytes]:
    companies = COMPANIES[:8]
    accounts = [["name", "unique_id", "url", "industry"]] + [
        [name, f"ACC-{i:03d}", f"https://www.{domain}", industry]
        for i, (name, domain, industry) in enumerate(companies, 1)
    ]
    deals = [
        [
            "Name",
            "target_close_date",
            "owner_email",
            "value",
            "deal_unique_id",
            "account_unique_id",
            "deal_stage",
            "pipeline_id",
            "project_type",
            "description",
            "account_name",
            "account_url",
            "account_industry",
        ]
    ]
    for i in range(1, 31):
        a = rng.randrange(len(companies))
        # A few deals override the account's name inline; the deal row wins.
        inline_name = f"{companies[a][0]} (EMEA)" if i % 10 == 0 else ""
        deals.append(
            [
                f"{companies[a][0].split()[0]} rollout {i}",
                _close(rng).isoformat(),
                f"{rng.choice(FIRST).lower()}@acme.example",
                f"{rng.randrange(5, 500) * 100}.00",
                f"D-{i:04d}",
                f"ACC-{a + 1:03d}",
                rng.choice(STAGES),
                "default",
                "Onboarding",
                f"Deal {i} for {companies[a][0]}",
                inline_name,
                "",
                "",
            ]
        )
    contacts = [
        [
            "first_name",
            "last_name",
            "email_address",
            "account_unique_id",
            "contact_unique_id",
            "role",
            "phone_number",
            "linkedin_url",
            "reports_to_id",
        ]
    ]
    for i in range(1, 41):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        a = rng.randrange(len(companies))
        contacts.append(
            [
                first,
                last,
                f"{first.lower()}.{last.lower()}@{companies[a][1]}".replace("é", "e").replace(
                    "í", "i"
                ),
                f"ACC-{a + 1:03d}",
                f"C-{i:04d}",
                rng.choice(ROLES),
                f"+1 555 01{i:02d}",
                f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}-{i}",
                f"C-{i - 1:04d}" if i % 4 == 0 else "",
            ]
        )
    return {
        "deals.csv": _csv(deals).encode(),
        "accounts.csv": _csv(accounts).encode(),
        "contacts.csv": _csv(contacts).encode(),
    }


def globex(rng: random.Random) -> dict[str, bytes]:
    deals = [
        [
            "Name",
            "target_close_date",
            "owner_email",
            "value",
            "deal_unique_id",
            "account_unique_id",
            "deal_stage",
            "account_name",
            "account_url",
            "account_industry",
        ]
    ]
    for i in range(1, 21):
        name, domain, industry = COMPANIES[rng.randrange(8)]
        deals.append(
            [
                f"Globex expansion {i}",
                _close(rng).isoformat(),
                "hank.scorpio@globex.example",
                str(rng.randrange(10, 900) * 50),
                f"GX-{i}",
                f"GXA-{domain.split('.')[0]}",
                rng.choice(STAGES),
                name,
                domain if i % 3 else "",
                industry,  # every third deal has no URL: a warning
            ]
        )
    return {"deals.csv": _csv(deals).encode()}


def initech(rng: random.Random) -> dict[str, bytes]:
    companies = COMPANIES[6:]
    deals = [
        [
            "NAME",
            " Target_Close_Date ",
            "Owner_Email",
            "Value",
            "Deal_Unique_ID",
            "Account_Unique_ID",
            "Deal_Stage",
            "Notes",
        ]
    ]
    for i in range(1, 16):
        a = rng.randrange(len(companies))
        euros = rng.randrange(1_000, 90_000)
        deals.append(
            [
                f"TPS-Projekt {i}",
                _close(rng).strftime("%d.%m.%Y"),
                f"bill.lumbergh{i % 3}@initech.example",
                f"{euros // 1000}.{euros % 1000:03d},{rng.randrange(100):02d} €",
                f"IN-{i:03d}",
                f"K{a + 1}",
                rng.choice(STAGES),
                'Ja; bitte "dringend"' if i == 2 else "",
            ]
        )
    deals += [
        [
            "Kaputtes Datum",
            "TBD",
            "bill@initech.example",
            "1.000,00 €",
            "IN-100",
            "K1",
            "Proposal",
            "",
        ],
        ["Ohne Besitzer", "01.03.2027", "", "2.500,00 €", "IN-101", "K1", "Proposal", ""],
        [
            "Kein Betrag",
            "15.03.2027",
            "bill@initech.example",
            "ca. zehn",
            "IN-102",
            "K2",
            "Proposal",
            "",
        ],
        [
            "Alte Fassung",
            "15.03.2027",
            "bill@initech.example",
            "9,99 €",
            "IN-003",
            "K2",
            "Discovery",
            "",
        ],
        [
            "Unbekannter Kunde",
            "15.03.2027",
            "bill@initech.example",
            "500,00 €",
            "IN-103",
            "K9",
            "Proposal",
            "",
        ],
    ]
    accounts = [["Name", "Unique_ID", "URL", "Industry"]] + [
        [name, f"K{i}", domain.upper() if i == 1 else domain, industry]
        for i, (name, domain, industry) in enumerate(companies, 1)
    ]
    contacts = [
        [
            "First_Name",
            "Last_Name",
            "Email_Address",
            "Account_Unique_ID",
            "Contact_Unique_ID",
            "Role",
            "Reports_To_ID",
        ]
    ]
    for i in range(1, 9):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        contacts.append(
            [
                first,
                last,
                f" {first}.{i}@Initech.example ",
                f"K{i % 3 + 1}",
                f"P{i}",
                rng.choice(ROLES),
                f"P{i + 1}" if i in (6, 7) else "",
            ]
        )
    contacts[-1][-1] = "P6"  # P6 -> P7 -> P8 -> P6: a reporting loop
    contacts.append(["Nina", "Niemand", "nina@nowhere.example", "K42", "P9", "", "P77"])
    return {
        "deals.csv": b"\xef\xbb\xbf" + _csv(deals, ";", "\r\n").encode(),
        "accounts.csv": _csv(accounts, ";", "\r\n").encode("cp1252"),
        "contacts.csv": _csv(contacts, ";", "\r\n").encode(),
    }


def umbrella(rng: random.Random) -> dict[str, bytes]:
    deals = [
        [
            "Deal Name",
            "Close Date",
            "Amount",
            "Record ID",
            "Company ID",
            "Deal Stage",
            "Pipeline",
            "Deal Owner",
        ]
    ]
    for i in range(1, 13):
        amount = rng.randrange(1_000, 250_000)
        value = f"(${amount:,}.00)" if i == 7 else f"${amount:,}.{rng.randrange(100):02d}"
        deals.append(
            [
                f"Umbrella {rng.choice(['Lab', 'Vaccine', 'Security'])} {i}",
                _close(rng).strftime("%m/%d/%Y"),
                value,
                str(9000 + i),
                str(100 + i % 4),
                rng.choice(STAGES),
                "Enterprise",
                "Albert Wesker" if i % 3 else "  albert wesker ",
            ]
        )
    accounts = [["Company Name", "Company ID", "Website", "Industry"]] + [
        [name, str(100 + i), domain, industry]
        for i, (name, domain, industry) in enumerate(COMPANIES[:4])
    ]
    users = [
        ["User ID", "First Name", "Last Name", "Email", "Role"],
        ["51", "Albert", "Wesker", "Albert.Wesker@umbrella.example", "Director"],
        ["52", "William", "Birkin", "william.birkin@umbrella.example", "Researcher"],
    ]
    return {
        "deals.csv": _csv(deals, "\t", "\r\n").encode("utf-16"),
        "accounts.csv": _csv(accounts).encode(),
        "users.csv": _csv(users).encode(),
    }


TENANTS = {"acme": acme, "globex": globex, "initech": initech, "umbrella": umbrella}


def build() -> dict[str, dict[str, bytes]]:
    return {tenant: make(random.Random(f"jf-sample-{tenant}")) for tenant, make in TENANTS.items()}


def write(root: Path) -> None:
    for tenant, files in build().items():
        folder = root / tenant
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    write(
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[1] / "data" / "landing"
    )
