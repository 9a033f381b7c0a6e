"""What a support agent types to find a customer, turned into lookups the store can index.

Agents type what the caller reads out: a phone number in any common format
(`+44 7700 900513`, `447700900513`, `07700 900513`, `whatsapp:+44…`, `(415) 555-0101`),
part of an email address, a name, or a customer id. `phone_candidates` normalises a
number to the E.164 form the profiles keep (Google's libphonenumber rules, through
`phonenumbers`); a national number without its country code is tried in the regions
the product serves.
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = ["NATIONAL_REGIONS", "looks_like_phone", "phone_candidates"]

#: regions a number written without its country code is tried in, most likely first
NATIONAL_REGIONS: tuple[str, ...] = (
    "US", "GB", "DE", "FR", "IN", "JP", "SG", "AU", "NG", "MX", "BR", "CA", "ES", "IT", "NL",
)  # fmt: skip

_ADDRESS_PREFIX = re.compile(r"^(whatsapp|sms|rcs|tel|mms)\s*:\s*", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"^[+(]?[\d\s().\-/]{6,}$")


def _strip(text: str) -> str:
    return _ADDRESS_PREFIX.sub("", text.strip())


def looks_like_phone(text: str) -> bool:
    """Whether `text` reads as a phone number (digits with the usual separators)."""
    bare = _strip(text)
    return bool(_PHONE_CHARS.match(bare)) and sum(c.isdigit() for c in bare) >= 6


def _e164(number: phonenumbers.PhoneNumber) -> str | None:
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_candidates(text: str) -> list[str]:
    """The E.164 numbers `text` may mean, most likely first (empty: not a number)."""
    if not looks_like_phone(text):
        return []
    bare = _strip(text)
    digits = "".join(c for c in bare if c.isdigit())
    tries: list[tuple[str, str | None]] = []
    if bare.startswith("+"):
        tries.append((bare, None))
    elif digits.startswith("00"):
        tries.append(("+" + digits[2:], None))
    else:
        tries.append(("+" + digits, None))  # a full number typed without its +
        tries += [(bare, region) for region in NATIONAL_REGIONS]
    out: list[str] = []
    for number, region in tries:
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException:
            continue
        e164 = _e164(parsed)
        if e164 is not None and e164 not in out:
            out.append(e164)
    return out
