"""The world the event generator draws customers from: regions with their time zones,
phone formats and names, the hours people act at, the product catalogue, the words
customers reply with, the codes providers fail with.

Tables only; `omniconsole.domain.generator` turns them into events. Changing any value
changes every generated log (the goldens and benchmarks are generated with these).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

# Relative weight of each local hour for things people do themselves (sign up, log
# in, reply): little at night, a morning ramp, an evening peak that runs into the
# 21:00-08:00 quiet hours.
_HOUR_WEIGHTS = (
    1.0, 0.5, 0.3, 0.2, 0.2, 0.4, 1.0, 3.0, 4.0, 5.0, 5.0, 5.0,
    6.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0, 7.0, 8.0, 8.0, 6.0, 3.0,
)  # fmt: skip
HOUR_CUM = tuple(accumulate(_HOUR_WEIGHTS))
HOUR_TOTAL = HOUR_CUM[-1]

_NAMES_US = ("Ana", "James", "Maria", "Michael", "Emily", "David", "Olivia", "Daniel",
             "Sophia", "Chris", "Jessica", "Kevin", "Ashley", "Brian", "Megan", "Tyler")  # fmt: skip
_NAMES_MX = ("Sofia", "Diego", "Valeria", "Jose", "Camila", "Luis", "Ximena", "Carlos")
_NAMES_BR = ("Joao", "Ana", "Lucas", "Beatriz", "Pedro", "Larissa", "Gabriel", "Fernanda",
             "Rafael", "Juliana", "Thiago", "Camila")  # fmt: skip
_NAMES_GB = ("Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Jack", "Poppy", "Noah")
_NAMES_DE = ("Lukas", "Hannah", "Felix", "Lena", "Jonas", "Mia", "Leon", "Emma", "Paul")
_NAMES_FR = ("Louis", "Chloe", "Hugo", "Lea", "Jules", "Manon", "Arthur", "Camille")
_NAMES_IN = ("Aarav", "Priya", "Vihaan", "Ananya", "Arjun", "Diya", "Rohan", "Isha",
             "Kabir", "Meera", "Aditya", "Kavya")  # fmt: skip
_NAMES_JP = ("Haruto", "Yui", "Sota", "Hina", "Ren", "Aoi", "Yuto", "Sakura")
_NAMES_SG = ("Wei", "Mei", "Jun", "Hui", "Arjun", "Siti", "Ethan", "Chloe")
_NAMES_AU = ("Jack", "Charlotte", "William", "Mia", "Oliver", "Isla", "Lachlan", "Zoe")
_NAMES_NG = ("Chinedu", "Ngozi", "Emeka", "Aisha", "Tunde", "Funmi", "Ibrahim", "Amaka",
             "Segun", "Zainab")  # fmt: skip
_NAMES_ANY = ("Alex", "Sam", "Robin", "Noor", "Kim", "Lee", "Jordan", "Eli")


def _digits(rng: random.Random, n: int) -> str:
    return str(int(rng.random() * 10**n)).zfill(n)


def _phone_us(rng: random.Random) -> str:
    # 555-01xx is the range reserved for fiction in the North American plan.
    area = ("212", "646", "415", "310", "213", "312", "617", "206")[int(rng.random() * 8)]
    return f"+1{area}55501{_digits(rng, 2)}"


@dataclass(frozen=True, slots=True)
class Region:
    """Where a customer lives: their zone and what goes with it."""

    timezone: str
    weight: float
    locales: tuple[str, ...]
    names: tuple[str, ...]
    phone: Callable[[random.Random], str]
    whatsapp: float  # share of phone owners opted in to WhatsApp
    rcs: float  # share of phone owners whose handset takes RCS
    currency: str


REGIONS: tuple[Region, ...] = (
    Region("America/New_York", 14, ("en-US",), _NAMES_US, _phone_us, 0.15, 0.35, "USD"),
    Region("America/Los_Angeles", 9, ("en-US", "es-US"), _NAMES_US, _phone_us, 0.2, 0.35, "USD"),
    Region("America/Chicago", 5, ("en-US",), _NAMES_US, _phone_us, 0.15, 0.35, "USD"),
    Region(
        "America/Mexico_City", 3, ("es-MX",), _NAMES_MX,
        lambda r: f"+5255{_digits(r, 8)}", 0.7, 0.3, "MXN",
    ),
    Region(
        "America/Sao_Paulo", 8, ("pt-BR",), _NAMES_BR,
        lambda r: f"+55119{_digits(r, 8)}", 0.8, 0.3, "BRL",
    ),
    Region(
        "Europe/London", 9, ("en-GB",), _NAMES_GB,
        lambda r: f"+447700900{_digits(r, 3)}", 0.45, 0.3, "GBP",
    ),
    Region(
        "Europe/Berlin", 8, ("de-DE", "en-GB"), _NAMES_DE,
        lambda r: f"+49151{_digits(r, 8)}", 0.55, 0.25, "EUR",
    ),
    Region(
        "Europe/Paris", 4, ("fr-FR",), _NAMES_FR,
        lambda r: f"+336{_digits(r, 8)}", 0.45, 0.3, "EUR",
    ),
    Region(
        "Asia/Kolkata", 10, ("en-IN", "hi-IN"), _NAMES_IN,
        lambda r: f"+919{_digits(r, 9)}", 0.75, 0.3, "INR",
    ),
    Region(
        "Asia/Tokyo", 6, ("ja-JP",), _NAMES_JP,
        lambda r: f"+8190{_digits(r, 8)}", 0.05, 0.1, "JPY",
    ),
    Region(
        "Asia/Singapore", 3, ("en-SG", "zh-SG"), _NAMES_SG,
        lambda r: f"+658{_digits(r, 7)}", 0.6, 0.3, "SGD",
    ),
    Region(
        "Australia/Sydney", 4, ("en-AU",), _NAMES_AU,
        lambda r: f"+61491570{_digits(r, 3)}", 0.2, 0.3, "AUD",
    ),
    Region(
        "Africa/Lagos", 5, ("en-NG",), _NAMES_NG,
        lambda r: f"+23480{_digits(r, 8)}", 0.75, 0.2, "NGN",
    ),
    Region("UTC", 3, ("en",), _NAMES_ANY, lambda r: f"+447700900{_digits(r, 3)}", 0.4, 0.25, "EUR"),
)  # fmt: skip
REGION_CUM = tuple(accumulate(r.weight for r in REGIONS))
REGION_TOTAL = REGION_CUM[-1]

CATEGORIES = ("shoes", "jackets", "bags", "watches", "headphones", "lamps", "books", "mugs")
CATALOG_SIZE = 400
# Prices in cents, from a fixed formula so the catalogue is the same in every log.
PRICE_CENTS = tuple(499 + (n * 3_719) % 24_000 for n in range(CATALOG_SIZE))
SKUS = tuple(f"SKU-{n:04d}" for n in range(CATALOG_SIZE))

SOURCES = ("web", "web", "ios", "android", "referral")
REPLIES = (
    "Thanks!",
    "ok",
    "When will my order arrive?",
    "yes please",
    "Can I change the address?",
    "👍",
    "who is this?",
    "Great, thank you",
)
STOP_WORDS = ("STOP", "stop", "Stop ", "UNSUBSCRIBE", "cancel", "STOPALL", " quit")
START_WORDS = ("START", "unstop", "Yes")
TICKET_SUBJECTS = (
    "Where is my order?",
    "Refund request",
    "Cannot log in",
    "Wrong item delivered",
    "Billing question",
)
FRAUD_REASONS = ("card_mismatch", "velocity", "geo_mismatch", "chargeback_history")
FAIL_CODES = {
    "email": "bounced",
    "sms": "30003",
    "whatsapp": "63016",
    "push": "UNREGISTERED",
    "rcs": "30008",
}
PLANS = ("free", "free", "free", "pro", "team")
