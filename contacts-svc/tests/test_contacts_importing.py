"""Reading CSV and vCard imports: what parses, and one clear error per row that does not (nor is written)."""

import pytest

from contacts_svc.book import ContactBook, Outcome, Written
from contacts_svc.importing import ImportRow, ParsedImport, UnreadableImport, decode, parse_csv, parse_vcards
from contacts_svc.model import ContactInput, PhoneInput
from switchboard.messaging import Conflict


def test_csv_rows_become_contact_inputs_with_labelled_numbers() -> None:
    text = (
        "Name,Company,E-mail,Phone,Phone Mobile,id,Notes\r\n"
        'Ann Smith,"Acme, Inc.",ann@example.com,(415) 555-0123,+1 650 253 0000,ann-1,vip\r\n'
        "Bob Jones,,,,+49 30 1234567,,\r\n"
    )
    parsed = parse_csv(text, max_rows=10)
    assert parsed.errors == []
    assert parsed.ignored_columns == ["Notes"]
    ann, bob = parsed.rows
    assert (ann.row, ann.contact_id, ann.data.name, ann.data.company, ann.data.email) == (
        2, "ann-1", "Ann Smith", "Acme, Inc.", "ann@example.com"
    )
    assert [(p.number, p.label) for p in ann.data.phone_numbers] == [("(415) 555-0123", None), ("+1 650 253 0000", "mobile")]
    assert (bob.contact_id, bob.data.company, [p.number for p in bob.data.phone_numbers]) == (None, None, ["+49 30 1234567"])


def test_csv_first_and_last_name_columns_make_the_name() -> None:
    parsed = parse_csv("first_name,last_name,phone\nAnn,Smith,+14155550123\n", max_rows=10)
    assert parsed.rows[0].data.name == "Ann Smith"


def test_csv_bad_rows_are_reported_by_row_and_the_rest_still_parse() -> None:
    text = (
        "name,phone,email,id\n"
        ",+14155550123,,\n"
        "No Phone,,,\n"
        "Bad Mail,+14155550123,not-an-email,\n"
        "Bad Id,+14155550123,,has space\n"
        "\n"
        "Good,+14155550123,,\n"
    )
    parsed = parse_csv(text, max_rows=10)
    assert [(e.row, e.message) for e in parsed.errors] == [
        (2, "The contact has no name."),
        (3, "The contact has no phone number."),
        (4, "email: Value error, not an email address."),
        (5, "The id may only use letters, digits and . _ : - (at most 128 characters)."),
    ]
    assert [r.row for r in parsed.rows] == [7]


def test_csv_without_name_or_phone_columns_is_unreadable() -> None:
    with pytest.raises(UnreadableImport, match="needs a name column"):
        parse_csv("email,company\na@b.c,Acme\n", max_rows=10)
    with pytest.raises(UnreadableImport, match="empty"):
        parse_csv("", max_rows=10)


def test_csv_larger_than_the_row_limit_is_refused() -> None:
    text = "name,phone\n" + "".join(f"P{i},+1415555{i:04d}\n" for i in range(5))
    with pytest.raises(UnreadableImport, match="more than 3 rows"):
        parse_csv(text, max_rows=3)


def test_files_must_be_utf8() -> None:
    assert decode("\ufeffname".encode()) == "name"
    with pytest.raises(UnreadableImport, match="UTF-8"):
        decode(b"\xff\xfe\x00n")


VCARDS = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "UID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\r\n"
    "FN:Ann Smith\r\n"
    "N:Smith;Ann;;;\r\n"
    "ORG:Acme\\, Inc.;Sales\r\n"
    "EMAIL;TYPE=INTERNET,WORK:ann@example.com\r\n"
    "TEL;TYPE=CELL,VOICE:(415) 555-\r\n"
    " 0123\r\n"
    "item1.TEL;TYPE=WORK:+1 650 253 0000\r\n"
    "END:VCARD\r\n"
    "BEGIN:VCARD\r\n"
    "VERSION:4.0\r\n"
    "N:Jones;Bob;;;\r\n"
    'TEL;VALUE=uri;TYPE="voice,home":tel:+49-30-1234567;ext=12\r\n'
    "END:VCARD\r\n"
    "BEGIN:VCARD\r\n"
    "VERSION:2.1\r\n"
    "FN;ENCODING=QUOTED-PRINTABLE;CHARSET=UTF-8:J=C3=BCrgen M=\r\n"
    "=C3=BCller\r\n"
    "TEL;CELL;PREF:+4915112345678\r\n"
    "END:VCARD\r\n"
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "FN:Nobody Callable\r\n"
    "END:VCARD\r\n"
)


def test_vcards_of_versions_2_3_and_4_are_read() -> None:
    parsed = parse_vcards(VCARDS, max_rows=10)
    ann, bob, juergen = parsed.rows
    assert ann.contact_id == "urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1"
    assert (ann.data.name, ann.data.company, ann.data.email) == ("Ann Smith", "Acme, Inc.", "ann@example.com")
    assert [(p.number, p.label) for p in ann.data.phone_numbers] == [("(415) 555-0123", "mobile"), ("+1 650 253 0000", "work")]
    assert (bob.row, bob.data.name, [(p.number, p.label) for p in bob.data.phone_numbers]) == (
        2, "Bob Jones", [("+49-30-1234567", "home")]
    )
    assert (juergen.data.name, juergen.data.phone_numbers[0].label) == ("Jürgen Müller", "mobile")
    assert [(e.row, e.message) for e in parsed.errors] == [(4, "The contact has no phone number.")]


def test_a_truncated_vcard_is_reported_and_text_without_cards_is_unreadable() -> None:
    parsed = parse_vcards("BEGIN:VCARD\nFN:Ann\nTEL:+14155550123\n", max_rows=10)
    assert [(e.row, e.message) for e in parsed.errors] == [(1, "The card has no END:VCARD.")]
    with pytest.raises(UnreadableImport, match="no vCard"):
        parse_vcards("name,phone\nAnn,+1\n", max_rows=10)


async def test_an_import_row_that_loses_its_number_slots_is_a_row_error_and_the_rest_are_written() -> None:
    class Book(ContactBook):
        def __init__(self) -> None:
            self.written: list[str] = []

        async def put(self, account_id, contact_id, data, region):  # type: ignore[override]
            if data.name == "Busy":
                raise Conflict("Many contacts with the same number were being saved at once; try again.")
            self.written.append(data.name)
            return Written(contact=None, outcome=Outcome.created)  # type: ignore[arg-type]

    rows = [
        ImportRow(row=n, contact_id=None, data=ContactInput(name=name, phone_numbers=[PhoneInput(number="+14155550123")]))
        for n, name in [(2, "Ann"), (3, "Busy"), (4, "Bob")]
    ]
    book = Book()
    report = await book.import_contacts("acc-1", ParsedImport(rows=rows), "US")
    assert book.written == ["Ann", "Bob"] and report.created == 2
    assert [(e.row, e.message) for e in report.errors] == [
        (3, "Many contacts with the same number were being saved at once; try again.")
    ]
