"""The emulator's register: fixture practitioners, one per state and adversarial mode.

Every HPI-I here passes the HPI-I check (prefix 800361, Luhn over the 16 digits; a test holds
them to ``identifiers.checks.validate_hpii``), so the product accepts them and the register
decides. Every AHPRA number is three letters and ten digits.

How the emulator answers a search (by HPI-I with family name, or by AHPRA number with family name):

| key              | HPI-I            | AHPRA         | family name | answer                                           |
|------------------|------------------|---------------|-------------|--------------------------------------------------|
| active           | 8003610000000105 | MED0000000001 | Nguyen      | found, status Active                             |
| deactivated      | 8003610000000204 | MED0000000002 | Smith       | found, status Deactivated                        |
| retired          | 8003610000000303 | MED0000000003 | Jones       | found, status Retired                            |
| by_ahpra         | 8003610000000402 | NMW0000000004 | Patel       | found, status Active (search it by AHPRA number) |
| mismatch         | 8003610000000501 | MED0000000005 | Taylor      | found with these details; any other family name, |
|                  |                  |               |             | given name, date of birth or sex: mismatch       |
| not_found        | 8003610000000600 | MED0000000099 | Brown       | not in the register: not found                   |
| fault            | 8003610000000709 | MED0000000007 | Fault       | a SOAP fault (HI-EMU-FAULT)                      |
| slow             | 8003610000000808 | MED0000000008 | Slow        | found, Active, after the emulator's slow delay   |
| bad_signature    | 8003610000000907 | MED0000000009 | Forged      | reply signature made over other content          |
| other_hpii       | 8003610000001004 | MED0000000010 | Other       | an answer about another HPI-I than asked         |
| oversized        | 8003610000001103 | MED0000000011 | Huge        | a reply body of several MiB                      |
| deep             | 8003610000001202 | MED0000000012 | Deep        | a reply nested thousands of levels deep          |
| entity_bomb      | 8003610000001301 | MED0000000013 | Bomb        | a reply with an XML entity bomb (DOCTYPE)        |
| garbage          | 8003610000001400 | MED0000000014 | Garbage     | bytes that are not XML                           |
| unsigned_reply   | 8003610000001509 | MED0000000015 | Unsigned    | a well-formed reply without a signature          |
| replayed         | 8003610000001608 | MED0000000016 | Replayed    | a signed reply to another request (RelatesTo)    |
| wrapped          | 8003610000001707 | MED0000000017 | Wrapped     | signature wrapping: its signed answer (Retired)  |
|                  |                  |               |             | moved into a header, an unsigned Active in the   |
|                  |                  |               |             | body                                             |

Any other well-formed HPI-I or AHPRA number is not found (with ``--unknown-active``, an HPI-I no
fixture holds is found, Active, with the details searched for: the benchmarks' providers). Every
practitioner in the register is a mismatch when searched with a family name (or, when sent, given
name, date of birth or sex) other than its own, whatever its behaviour. The codes the emulator puts in service messages:

| code             | severity | when                                                       |
|------------------|----------|------------------------------------------------------------|
| HI-EMU-MISMATCH  | Error    | the identifier is known, the details are not its own       |
| HI-EMU-NOTFOUND  | Error    | no practitioner has this HPI-I or AHPRA number             |
| HI-EMU-FAULT     | Fatal    | the fixture's service fault                                |
| HI-EMU-SIGNATURE | Fatal    | the request is unsigned, or its signature does not verify  |
| HI-EMU-HEADER    | Fatal    | a required header is missing, malformed or expired         |
| HI-EMU-REQUEST   | Fatal    | the body is not a provider-individual search               |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

MISMATCH_CODE = "HI-EMU-MISMATCH"
NOT_FOUND_CODE = "HI-EMU-NOTFOUND"
FAULT_CODE = "HI-EMU-FAULT"
SIGNATURE_CODE = "HI-EMU-SIGNATURE"
HEADER_CODE = "HI-EMU-HEADER"
REQUEST_CODE = "HI-EMU-REQUEST"

# Behaviours other than a plain answer from the register's record.
ANSWER = "answer"
FAULT = "fault"
SLOW = "slow"
ADVERSARIAL = ("bad_signature", "other_hpii", "oversized", "deep", "entity_bomb", "garbage", "unsigned_reply",
               "replayed", "wrapped")


@dataclass(frozen=True)
class Practitioner:
    hpii: str
    registration_id: str
    family_name: str
    given_names: tuple[str, ...]
    date_of_birth: date
    sex: str
    status: str = "Active"
    behaviour: str = ANSWER
    in_register: bool = True


def _p(hpii, ahpra, family, given, born, sex, status="Active", behaviour=ANSWER, in_register=True):
    return Practitioner(hpii, ahpra, family, tuple(given), born, sex, status, behaviour, in_register)


PRACTITIONERS: dict[str, Practitioner] = {
    "active": _p("8003610000000105", "MED0000000001", "Nguyen", ["Alice"], date(1980, 3, 14), "F"),
    "deactivated": _p("8003610000000204", "MED0000000002", "Smith", ["Bob"], date(1975, 7, 2), "M", "Deactivated"),
    "retired": _p("8003610000000303", "MED0000000003", "Jones", ["Carol"], date(1950, 11, 23), "F", "Retired"),
    "by_ahpra": _p("8003610000000402", "NMW0000000004", "Patel", ["Dev"], date(1988, 5, 9), "M"),
    "mismatch": _p("8003610000000501", "MED0000000005", "Taylor", ["Erin"], date(1979, 1, 30), "F"),
    "not_found": _p("8003610000000600", "MED0000000099", "Brown", ["Frank"], date(1982, 2, 2), "M", in_register=False),
    "fault": _p("8003610000000709", "MED0000000007", "Fault", ["Gina"], date(1970, 4, 4), "F", behaviour=FAULT),
    "slow": _p("8003610000000808", "MED0000000008", "Slow", ["Hugo"], date(1985, 6, 6), "M", behaviour=SLOW),
    "bad_signature": _p("8003610000000907", "MED0000000009", "Forged", ["Ivy"], date(1981, 1, 1), "F",
                        behaviour="bad_signature"),
    "other_hpii": _p("8003610000001004", "MED0000000010", "Other", ["Jack"], date(1981, 1, 1), "M",
                     behaviour="other_hpii"),
    "oversized": _p("8003610000001103", "MED0000000011", "Huge", ["Kim"], date(1981, 1, 1), "F", behaviour="oversized"),
    "deep": _p("8003610000001202", "MED0000000012", "Deep", ["Leo"], date(1981, 1, 1), "M", behaviour="deep"),
    "entity_bomb": _p("8003610000001301", "MED0000000013", "Bomb", ["Mia"], date(1981, 1, 1), "F",
                      behaviour="entity_bomb"),
    "garbage": _p("8003610000001400", "MED0000000014", "Garbage", ["Ned"], date(1981, 1, 1), "M", behaviour="garbage"),
    "unsigned_reply": _p("8003610000001509", "MED0000000015", "Unsigned", ["Oda"], date(1981, 1, 1), "F",
                         behaviour="unsigned_reply"),
    "replayed": _p("8003610000001608", "MED0000000016", "Replayed", ["Pia"], date(1981, 1, 1), "F",
                   behaviour="replayed"),
    "wrapped": _p("8003610000001707", "MED0000000017", "Wrapped", ["Quin"], date(1981, 1, 1), "M", "Retired",
                  behaviour="wrapped"),
}

# The HPI-O the tests and `make run` use for their organization (passes the HPI-O check).
FIXTURE_HPIO = "8003620000000013"


def by_hpii(hpii: str) -> Practitioner | None:
    return next((p for p in PRACTITIONERS.values() if p.in_register and p.hpii == hpii), None)


def by_registration_id(registration_id: str) -> Practitioner | None:
    wanted = registration_id.upper()
    return next((p for p in PRACTITIONERS.values() if p.in_register and p.registration_id == wanted), None)
