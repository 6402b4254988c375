"""Bulk import: CSV and vCard files read into contact inputs, with an error per bad row.

Nothing here touches the store; `ContactBook.import_contacts` writes what parsed. Numbers are
normalised there, with the import's region, so a bad number is also reported per row.

CSV: a header row, then one contact per row. Columns (case and spacing ignored):
`name` (or `first_name` and `last_name`), `company`, `email`, `id` (optional, makes re-imports
update instead of add), and one number per `phone` or `phone_<label>` column (`phone_mobile`,
`phone_work`, ...). Other columns are ignored and reported.

vCard 2.1, 3.0 and 4.0: FN (or N), ORG, EMAIL, TEL (with TYPE labels; `tel:` URIs), UID.
"""

from __future__ import annotations

import csv
import io
import quopri
import re
from dataclasses import dataclass, field

from pydantic import ValidationError

from contacts_svc.model import ContactInput
from switchboard.contracts.envelope import IDENTIFIER

_IDENTIFIER = re.compile(IDENTIFIER)


class UnreadableImport(ValueError):
    """The file as a whole cannot be read (wrong encoding, no usable header, too many rows)."""


@dataclass(frozen=True)
class ImportRow:
    row: int
    contact_id: str | None
    data: ContactInput


@dataclass(frozen=True)
class RowError:
    row: int
    message: str


@dataclass
class ParsedImport:
    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableImport("The file is not UTF-8 text.") from None


def _describe(error: ValidationError) -> str:
    parts = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "row"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts[:3]) + "."


def _row(row: int, contact_id: str | None, fields: dict[str, object]) -> ImportRow | RowError:
    if contact_id is not None and not _IDENTIFIER.match(contact_id):
        return RowError(row, "The id may only use letters, digits and . _ : - (at most 128 characters).")
    if not fields.get("name"):
        return RowError(row, "The contact has no name.")
    if not fields.get("phone_numbers"):
        return RowError(row, "The contact has no phone number.")
    try:
        return ImportRow(row, contact_id, ContactInput.model_validate(fields))
    except ValidationError as e:
        return RowError(row, _describe(e))


def _header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


_COLUMNS = {
    "name": "name",
    "full_name": "name",
    "display_name": "name",
    "first_name": "first_name",
    "given_name": "first_name",
    "last_name": "last_name",
    "family_name": "last_name",
    "surname": "last_name",
    "company": "company",
    "organization": "company",
    "organisation": "company",
    "email": "email",
    "e_mail": "email",
    "id": "id",
    "contact_id": "id",
}


def _phone_label(key: str) -> tuple[bool, str | None]:
    if key in ("phone", "phone_number", "telephone"):
        return True, None
    if key.startswith("phone_"):
        return True, key.removeprefix("phone_").replace("_", " ")
    return False, None


def parse_csv(text: str, *, max_rows: int) -> ParsedImport:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableImport("The CSV file is empty.") from None
    except csv.Error as e:
        raise UnreadableImport(f"The CSV header cannot be read: {e}.") from None
    columns: dict[int, str] = {}
    phones: dict[int, str | None] = {}
    parsed = ParsedImport()
    for index, title in enumerate(header):
        key = _header_key(title)
        is_phone, label = _phone_label(key)
        if is_phone:
            phones[index] = label
        elif key in _COLUMNS:
            columns[index] = _COLUMNS[key]
        elif title.strip():
            parsed.ignored_columns.append(title.strip())
    named = {"name"} <= set(columns.values()) or {"first_name", "last_name"} & set(columns.values())
    if not named or not phones:
        raise UnreadableImport(
            "The CSV header needs a name column (name, or first_name and last_name) and at least one "
            "phone column (phone, or phone_<label> such as phone_mobile)."
        )
    row_number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            row_number += 1
            parsed.errors.append(RowError(row_number, f"The row cannot be read: {e}."))
            continue
        row_number += 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(parsed.rows) + len(parsed.errors) >= max_rows:
            raise UnreadableImport(f"The file has more than {max_rows} rows; split it.")
        values = {columns[i]: cells[i].strip() for i in columns if i < len(cells) and cells[i].strip()}
        name = values.get("name") or " ".join(v for v in (values.get("first_name"), values.get("last_name")) if v)
        numbers = [
            {"number": cells[i].strip(), "label": label} for i, label in phones.items() if i < len(cells) and cells[i].strip()
        ]
        fields = {"name": name, "company": values.get("company"), "email": values.get("email"), "phone_numbers": numbers}
        parsed_row = _row(row_number, values.get("id"), fields)
        (parsed.rows if isinstance(parsed_row, ImportRow) else parsed.errors).append(parsed_row)  # type: ignore[arg-type]
    return parsed


@dataclass
class _Property:
    name: str
    params: dict[str, list[str]]
    value: str


def _split_unquoted(text: str, separator: str, limit: int = -1) -> list[str]:
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted and limit != 0:
            parts.append("".join(current))
            current = []
            limit -= 1
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _content_line(line: str) -> _Property | None:
    pieces = _split_unquoted(line, ":", limit=1)
    if len(pieces) != 2:
        return None
    head, value = pieces
    name, *raw_params = _split_unquoted(head, ";")
    name = name.rsplit(".", 1)[-1].strip().upper()
    params: dict[str, list[str]] = {}
    for raw in raw_params:
        key, eq, val = raw.partition("=")
        if not eq:
            key, val = "TYPE", key
        values = [v.strip().strip('"').lower() for v in val.split(",") if v.strip()]
        params.setdefault(key.strip().upper(), []).extend(values)
    if "quoted-printable" in params.get("ENCODING", []):
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        try:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode(charset, "replace")
        except LookupError:
            value = quopri.decodestring(value.encode("latin-1", "replace")).decode("utf-8", "replace")
    return _Property(name, params, value)


def _unfold(text: str) -> list[tuple[int, str]]:
    """Logical lines with the number of their first physical line; folded and QP soft breaks joined."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        elif lines and lines[-1][1].endswith("=") and "QUOTED-PRINTABLE" in lines[-1][1].split(":", 1)[0].upper():
            lines[-1] = (lines[-1][0], lines[-1][1][:-1] + raw)
        elif raw.strip():
            lines.append((number, raw))
    return lines


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _components(value: str) -> list[str]:
    return [_unescape(part).strip() for part in re.split(r"(?<!\\);", value)]


_TEL_LABELS = {"cell": "mobile", "mobile": "mobile", "work": "work", "home": "home", "fax": "fax", "main": "main"}
_TEL_IGNORED = {"voice", "pref", "internet", "x-", "text"}


def _tel_label(types: list[str]) -> str | None:
    for t in types:
        if t in _TEL_LABELS:
            return _TEL_LABELS[t]
    others = [t for t in types if t not in _TEL_IGNORED and not t.startswith("x-")]
    return others[0][:50] if others else None


def _tel_value(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("tel:"):
        value = value[4:].split(";", 1)[0]
    return value


def parse_vcards(text: str, *, max_rows: int) -> ParsedImport:
    parsed = ParsedImport()
    card: list[_Property] | None = None
    card_number = 0
    for line_number, line in _unfold(text):
        prop = _content_line(line)
        if prop is None:
            if card is not None:
                parsed.errors.append(RowError(card_number, f"Line {line_number} is not a vCard property."))
                card = None
            continue
        if prop.name == "BEGIN" and prop.value.strip().upper() == "VCARD":
            card_number += 1
            if card_number > max_rows:
                raise UnreadableImport(f"The file has more than {max_rows} cards; split it.")
            card = []
        elif prop.name == "END" and prop.value.strip().upper() == "VCARD":
            if card is not None:
                result = _card(card_number, card)
                (parsed.rows if isinstance(result, ImportRow) else parsed.errors).append(result)  # type: ignore[arg-type]
            card = None
        elif card is not None:
            card.append(prop)
    if card is not None:
        parsed.errors.append(RowError(card_number, "The card has no END:VCARD."))
    if card_number == 0:
        raise UnreadableImport("The file holds no vCard (BEGIN:VCARD ... END:VCARD).")
    return parsed


def _card(number: int, props: list[_Property]) -> ImportRow | RowError:
    def first(name: str) -> _Property | None:
        return next((p for p in props if p.name == name), None)

    fn = first("FN")
    name = _unescape(fn.value).strip() if fn else ""
    if not name and (n := first("N")):
        family, given, *_ = _components(n.value) + ["", ""]
        name = " ".join(p for p in (given, family) if p)
    org = first("ORG")
    email = first("EMAIL")
    uid = first("UID")
    phones = [
        {"number": _tel_value(_unescape(p.value)), "label": _tel_label(p.params.get("TYPE", []))}
        for p in props
        if p.name == "TEL" and _tel_value(p.value)
    ]
    contact_id = _unescape(uid.value).strip() if uid and uid.value.strip() else None
    if contact_id is not None and not _IDENTIFIER.match(contact_id):
        contact_id = None
    fields = {
        "name": name,
        "company": _components(org.value)[0] if org else None,
        "email": _unescape(email.value).strip() if email else None,
        "phone_numbers": phones,
    }
    return _row(number, contact_id, fields)
