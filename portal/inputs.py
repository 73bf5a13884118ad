"""What people type, parsed once and bounded: dates, local times, months, money, numbers and ids.

Every form and every query string of the core and of the plugins reads typed values through
this module (plugins import it from ``portal.plugin_api``), so that a value no column, no
time zone and no month arithmetic can hold is refused with a message, never a 500:

* **dates, local times and months** lie in the years ``FIRST_YEAR``..``LAST_YEAR``
  (2000..2100: no parcel, signature, complaint, penalty or setting of the portal is older,
  and year 1 or 9999 would overflow as soon as a time zone or a month is added);
* **money** is finite, has at most two decimal places and fits ``Money``
  (``Numeric(12, 2)``: at most ``MAX_MONEY``); ``-0`` reads as ``0``;
* **ids** are whole numbers from 1 to ``MAX_ID`` (an ``INTEGER`` column, the limit of every
  ``<int:…>`` in a URL), or to ``MAX_BIGINT`` for a ``BIGINT`` column (the audit ``seq``);
  other **whole numbers** stay within ``±MAX_ID`` unless the caller narrows them;
* a **file** is never a text: a multipart file part is refused before any view runs unless
  the view declares that field an upload (``accepts_files``), see ``refuse_unexpected_files``.

Each parser takes the raw text and returns the value or raises ``InputError`` (a
``ValueError``) whose ``message`` is for the person.  The WTForms fields below show that
message next to their field; ``query_value`` reads a query-string parameter; an
``InputError`` that leaves a view unhandled answers 400 with its message (``portal.errors``)
after rolling the session back, so a refusal never writes half.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timezone, tzinfo
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from wtforms import DateField as _DateField
from wtforms import DateTimeLocalField as _DateTimeLocalField
from wtforms import IntegerField as _IntegerField
from wtforms.validators import StopValidation

from portal import MAX_ID

FIRST_YEAR = 2000  # the earliest year a business date of the portal may have
LAST_YEAR = 2100  # the latest
MAX_BIGINT = 2**63 - 1  # a BIGINT column (the audit trail's ``seq``)
MAX_MONEY = Decimal("9999999999.99")  # the ``Money`` column: Numeric(12, 2)
CENT = Decimal("0.01")

# what a browser's date / datetime-local / month inputs send, and what people type
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_INTEGER = re.compile(r"[+-]?\d{1,30}")
_DECIMAL = re.compile(r"[+-]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})")

DATE_MESSAGE = _l("A date such as 2026-11-16.")
DATETIME_MESSAGE = _l("A local time such as 2026-11-16 10:00.")
MONTH_MESSAGE = _l("A month is written like 2026-11.")
MONEY_MESSAGE = _l("Enter an amount such as 200 or 200.50.")
FILE_MESSAGE = _l("A file was sent where a text is expected. Nothing was saved.")


class InputError(ValueError):
    """A typed value the portal refuses.  ``message`` is for the person (lazy: translated when
    shown); ``code`` says why: ``format``, ``range``, ``places`` (too many decimals),
    ``finite`` (``NaN``, ``Infinity``) or ``negative``."""

    def __init__(self, message: Any, code: str = "format"):
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return str(self.message)


def text(raw: Any) -> str:
    """The stripped text of a value; a file (or anything but text) is refused."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise InputError(FILE_MESSAGE)
    return raw.strip()


def _year_in_range(year: int, message: Any) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InputError(message, "range")


def parse_date(raw: Any) -> date:
    """``2026-11-16`` → ``date(2026, 11, 16)``, in the years ``FIRST_YEAR``..``LAST_YEAR``."""
    match = _DATE.fullmatch(text(raw))
    if match is None:
        raise InputError(DATE_MESSAGE)
    try:
        day = date(*map(int, match.groups()))
    except ValueError:
        raise InputError(DATE_MESSAGE) from None
    _year_in_range(day.year, DATE_MESSAGE)
    return day


def parse_datetime(raw: Any, formats: tuple[str, ...] | None = None) -> datetime:
    """A local wall time, naive: ``2026-11-16T10:00`` or ``2026-11-16 10:00`` (seconds
    optional), or one of ``formats`` (``strptime``) — in the years ``FIRST_YEAR``..``LAST_YEAR``.
    ``to_utc`` makes it an instant."""
    value = text(raw)
    if formats is None:
        match = _DATETIME.fullmatch(value)
        if match is None:
            raise InputError(DATETIME_MESSAGE)
        try:
            local = datetime(*(int(part or 0) for part in match.groups()))
        except ValueError:
            raise InputError(DATETIME_MESSAGE) from None
    else:
        for fmt in formats:
            try:
                local = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
        else:
            raise InputError(DATETIME_MESSAGE)
    _year_in_range(local.year, DATETIME_MESSAGE)
    return local


def to_utc(local: datetime, zone: tzinfo) -> datetime:
    """A naive local time of ``parse_datetime`` as an aware instant (UTC) in ``zone``."""
    return local.replace(tzinfo=zone).astimezone(timezone.utc)


def parse_month(raw: Any, *, last_year: int = LAST_YEAR) -> tuple[int, int]:
    """``2026-11`` → ``(2026, 11)``, in the years ``FIRST_YEAR``..``last_year``.

    Month arithmetic on a month already read (the month after the last one asked) passes
    ``last_year=LAST_YEAR + 1``."""
    match = _MONTH.fullmatch(text(raw))
    if match is None:
        raise InputError(MONTH_MESSAGE)
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise InputError(MONTH_MESSAGE)
    if not FIRST_YEAR <= year <= last_year:
        raise InputError(MONTH_MESSAGE, "range")
    return year, month


def parse_int(raw: Any, *, minimum: int = -MAX_ID, maximum: int = MAX_ID, message: Any = None) -> int:
    """A whole number from ``minimum`` to ``maximum`` (default: what an INTEGER column holds)."""
    message = message or _l("A whole number from %(min)s to %(max)s.", min=minimum, max=maximum)
    if isinstance(raw, int) and not isinstance(raw, bool):  # a form's own data, not typed
        number = raw
    else:
        value = text(raw)
        if _INTEGER.fullmatch(value) is None:
            raise InputError(message)
        number = int(value)
    if not minimum <= number <= maximum:
        raise InputError(message, "range")
    return number


def parse_id(raw: Any, *, maximum: int = MAX_ID) -> int:
    """The id of a record: 1..``MAX_ID`` (``maximum=MAX_BIGINT`` for a BIGINT column)."""
    return parse_int(raw, minimum=1, maximum=maximum)


def id_or_none(raw: Any) -> int | None:
    """An id, or ``None`` for anything else (a ``SelectField``'s ``coerce`` for an optional choice)."""
    try:
        return parse_id(raw)
    except (InputError, TypeError):
        return None


def parse_decimal(raw: Any, *, places: int = 2, minimum: Decimal | None = None,
                  maximum: Decimal = MAX_MONEY, message: Any = None) -> Decimal:
    """A finite decimal with at most ``places`` decimals, ``minimum``..``maximum`` (default: what
    ``Money`` holds, ±``MAX_MONEY``).  No exponents, no ``NaN``/``Infinity``; ``-0`` reads as 0."""
    message = message or MONEY_MESSAGE
    value = text(raw)
    if _DECIMAL.fullmatch(value) is None:
        try:
            code = "format" if Decimal(value).is_finite() else "finite"  # 1e400 / NaN, Infinity
        except InvalidOperation:
            code = "format"
        raise InputError(message, code)
    number = Decimal(value)
    low = -maximum if minimum is None else minimum
    if number < low:
        raise InputError(message, "negative" if number < 0 <= low else "range")
    if number > maximum:
        raise InputError(message, "range")
    with localcontext() as context:
        context.prec = 60
        if number != number.quantize(Decimal(1).scaleb(-places)):
            raise InputError(message, "places")
    return number.copy_abs() if number == 0 else number  # as typed (2.4 stays 2.4)


def parse_money(raw: Any, *, maximum: Decimal = MAX_MONEY) -> Decimal:
    """An amount in yuan: ≥ 0, at most two places, at most ``MAX_MONEY``; with two places."""
    try:
        return parse_decimal(raw, places=2, minimum=Decimal(0), maximum=maximum).quantize(CENT)
    except InputError as error:
        if error.code == "negative":
            raise InputError(_l("An amount cannot be negative."), "negative") from None
        raise


# --- query strings ----------------------------------------------------------------------------


def query_value(name: str, parse: Callable[[Any], Any], default: Any = None) -> Any:
    """The query-string parameter ``name`` read by ``parse``; ``default`` when it is absent or
    empty.  A bad value raises ``InputError`` (400 with its message unless the view shows it
    next to its filter)."""
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        return default
    return parse(raw)


# --- uploads ----------------------------------------------------------------------------------


def accepts_files(*names: str) -> Callable[[Callable], Callable]:
    """Mark a view whose form has file fields ``names`` (with their prefix: ``import-file``);
    any other multipart file part is refused before the view runs."""

    def mark(view: Callable) -> Callable:
        view._portal_file_fields = frozenset(names)
        return view

    return mark


def refuse_unexpected_files() -> None:
    """``before_request``: a file part for a field that takes text (or on a view that takes no
    upload) is nothing a browser sends from the portal's forms — 400 before any view writes."""
    if request.method in ("GET", "HEAD", "OPTIONS") or not request.files:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    allowed = getattr(view, "_portal_file_fields", frozenset())
    if any(name not in allowed for name in request.files):
        raise InputError(FILE_MESSAGE)


# --- WTForms fields ---------------------------------------------------------------------------


class ParsedField:
    """A field whose text goes through one of the parsers above: the refusal's message is the
    field's only error (no "This field is required." after it), shown next to the field."""

    def parse(self, raw: Any) -> Any:  # pragma: no cover - each field says how
        raise NotImplementedError

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        raw = valuelist[0]
        if isinstance(raw, str) and not raw.strip():
            self.data = None
            return
        try:
            self.data = self.parse(raw)
        except InputError as error:
            self.data = None
            raise ValueError(str(error)) from None

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()
        super().pre_validate(form)


class DateField(ParsedField, _DateField):
    """A date (``<input type="date">``) read by ``parse_date``."""

    def parse(self, raw):
        return parse_date(raw)


class LocalDateTimeField(ParsedField, _DateTimeLocalField):
    """A local wall time (``<input type="datetime-local">``) read by ``parse_datetime``; naive,
    in the unit's zone (``to_utc``)."""

    def __init__(self, label=None, validators=None, format=None, **kwargs):  # noqa: A002
        super().__init__(label, validators, format=format or ["%Y-%m-%dT%H:%M"], **kwargs)

    def parse(self, raw):
        return parse_datetime(raw)


class IntegerField(ParsedField, _IntegerField):
    """A whole number from ``minimum`` to ``maximum`` (default: 1..``MAX_ID``, an id)."""

    def __init__(self, label=None, validators=None, minimum: int = 1, maximum: int = MAX_ID,
                 message: Any = None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.minimum, self.maximum, self.message = minimum, maximum, message

    def parse(self, raw):
        return parse_int(raw, minimum=self.minimum, maximum=self.maximum, message=self.message)


__all__ = [
    "CENT",
    "FIRST_YEAR",
    "LAST_YEAR",
    "MAX_BIGINT",
    "MAX_ID",
    "MAX_MONEY",
    "DateField",
    "InputError",
    "IntegerField",
    "LocalDateTimeField",
    "ParsedField",
    "accepts_files",
    "id_or_none",
    "parse_date",
    "parse_datetime",
    "parse_decimal",
    "parse_id",
    "parse_int",
    "parse_money",
    "parse_month",
    "query_value",
    "refuse_unexpected_files",
    "text",
    "to_utc",
]
