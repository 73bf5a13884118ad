"""The types plugins hand to the core through the hooks in ``portal.hookspecs``.

A plugin imports from here (and from ``portal.hookspecs`` for ``hookimpl``);
everything else in ``portal`` is the core's own business.

What people type is read by the core's one bounded parser (``portal.inputs``), re-exported
here: ``parse_date``, ``parse_datetime``, ``parse_month``, ``parse_money``,
``parse_decimal``, ``parse_int``, ``parse_id`` (``InputError`` with a message for the person),
``query_value`` for query strings, the WTForms fields ``DateField``, ``LocalDateTimeField``
and ``IntegerField`` that show a refusal next to their field, and ``accepts_files`` for a
view with an upload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l

from portal.inputs import (  # the one bounded parser of what people type (re-exported)
    FIRST_YEAR,
    LAST_YEAR,
    MAX_BIGINT,
    MAX_ID,
    MAX_MONEY,
    DateField,
    InputError,
    IntegerField,
    LocalDateTimeField,
    accepts_files,
    id_or_none,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_id,
    parse_int,
    parse_money,
    parse_month,
    query_value,
    to_utc,
)
from portal.transitions import StaleState, lock, transition  # race-safe state changes (re-exported)

__all__ = ["BUILTIN_ROLES", "DomainEvent", "NavItem", "Panel", "PenaltyDraft", "PenaltyRule",
           "Permission", "Role", "SettingError", "SettingSpec", "SlaPolicy", "StaleState", "lock",
           "transition",
           # portal.inputs
           "FIRST_YEAR", "LAST_YEAR", "MAX_BIGINT", "MAX_ID", "MAX_MONEY", "DateField", "InputError",
           "IntegerField", "LocalDateTimeField", "accepts_files", "id_or_none", "parse_date",
           "parse_datetime", "parse_decimal", "parse_id", "parse_int", "parse_money", "parse_month",
           "query_value", "to_utc"]

BUILTIN_ROLES = ("staff", "supervisor", "manager", "auditor", "admin")


@dataclass(frozen=True)
class Role:
    """A role users can hold on a unit.  ``name`` is unique across core and plugins."""

    name: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class Permission:
    """A named permission (``<plugin>.<action>``) and the roles granted it by default.

    ``admin`` holds every permission; it never needs to be listed.
    """

    name: str
    label_zh: str
    label_en: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class NavItem:
    """A link in the main navigation.  Shown only if the user has ``permission`` here."""

    label: str
    endpoint: str
    permission: str
    order: int = 100
    icon: str = ""


@dataclass(frozen=True)
class Panel:
    """A dashboard panel.  The dashboard loads ``endpoint`` lazily with htmx."""

    id: str
    title: str
    endpoint: str
    permission: str
    order: int = 100


class SettingError(ValueError):
    """A value that a setting refuses; the message is shown next to the field."""


@dataclass(frozen=True)
class SettingSpec:
    """A per-unit setting with the regulation's value as its default (CORE-10).

    ``key`` is ``<plugin>.<name>`` (``express.reply_minutes``); ``type`` is one of
    ``int``, ``decimal`` (money, CNY), ``minutes``, ``bool``, ``time`` (HH:MM), ``text``.
    ``minimum``/``maximum`` bound numbers; ``validate`` may raise ``SettingError``.
    ``rule`` names the regulation ID the value comes from.
    """

    key: str
    type: str
    default: Any
    label_zh: str
    label_en: str
    rule: str = ""
    minimum: Any = None
    maximum: Any = None
    help_zh: str = ""
    help_en: str = ""
    validate: Callable[[Any], None] | None = None

    TYPES = ("int", "decimal", "minutes", "bool", "time", "text")

    def __post_init__(self) -> None:
        if self.type == "decimal":
            for value in (self.default, self.minimum, self.maximum):
                if isinstance(value, float):
                    raise TypeError(f"{self.key}: money is Decimal, not float ({value!r})")

    def parse(self, raw: str) -> Any:
        """Turn the text an admin typed (or the stored text) into the typed value."""
        raw = raw or ""
        try:
            if self.type in ("int", "minutes"):  # what an INTEGER holds; the spec narrows it below
                value: Any = parse_int(raw)
            elif self.type == "decimal":  # money: what the Money column holds
                try:
                    value = parse_decimal(raw)
                except InputError as exc:
                    if exc.code in ("places", "finite"):
                        raise SettingError(_l("at most two decimal places")) from exc
                    if exc.code == "range":
                        raise SettingError(_l("must be at most %(n)s", n=MAX_MONEY)) from exc
                    raise
            elif self.type == "bool":
                raw = raw.strip()
                if raw.lower() not in ("true", "false", "1", "0", "on", "off"):
                    raise SettingError(_l("yes or no"))
                value = raw.lower() in ("true", "1", "on")
            elif self.type == "time":
                raw = raw.strip()
                value = time.fromisoformat(raw)
                if len(raw) != 5:
                    raise ValueError
            else:
                value = raw.strip()
        except SettingError:
            raise
        except ValueError as exc:  # InputError included
            message = _TYPE_MESSAGES[self.type] if self.type in _TYPE_MESSAGES else _l("invalid value")
            raise SettingError(message) from exc
        if self.minimum is not None and value < self.minimum:
            raise SettingError(_l("must be at least %(n)s", n=self.minimum))
        if self.maximum is not None and value > self.maximum:
            raise SettingError(_l("must be at most %(n)s", n=self.maximum))
        if self.validate is not None:
            self.validate(value)
        return value

    def dump(self, value: Any) -> str:
        """The stored text of a typed value."""
        if self.type == "bool":
            return "true" if value else "false"
        if self.type == "time":
            return value.strftime("%H:%M")
        if self.type == "decimal":
            if isinstance(value, float):
                raise TypeError(f"{self.key}: money is Decimal, not float ({value!r})")
            return str(Decimal(value).quantize(Decimal("0.01")))
        return str(value)

    def as_timedelta(self, value: int) -> timedelta:
        return timedelta(minutes=value)


# Lazy: the message is translated when str() is taken (in the request, in the user's language).
_TYPE_MESSAGES = {
    "int": _l("a whole number"),
    "minutes": _l("a whole number of minutes"),
    "decimal": _l("an amount such as 200 or 200.50"),
    "time": _l("a time as HH:MM"),
}


@dataclass(frozen=True)
class PenaltyRule:
    """A fine or consequence a regulation sets, keyed by its regulation ID (``EXP-P03``).

    The amount is fixed (``amount_min == amount_max``), a range, or ``None`` for a
    consequence an auditor sets (dismissal, a heavy penalty with no figure).
    ``escalation`` maps the Nth verified offence to a consequence text.
    ``issuer`` names the body that confirms (监察部, 质控部, …).
    """

    id: str
    title_zh: str
    title_en: str
    clause: str
    amount_min: Decimal | None
    amount_max: Decimal | None
    issuer: str = "auditor"
    escalation: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for amount in (self.amount_min, self.amount_max):
            if amount is not None and not isinstance(amount, Decimal):
                raise TypeError(f"{self.id}: amounts are Decimal, not {type(amount).__name__}")
        if (self.amount_min is None) != (self.amount_max is None):
            raise ValueError(f"{self.id}: give both ends of the amount or neither")
        if self.amount_min is not None and self.amount_min > self.amount_max:
            raise ValueError(f"{self.id}: amount_min above amount_max")

    @property
    def is_range(self) -> bool:
        return self.amount_min is not None and self.amount_min != self.amount_max


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened in a plugin that a penalty rule may care about."""

    name: str  # "<plugin>.<event>", e.g. "express.reply_late"
    unit_id: int
    occurred_at: datetime
    subject_user_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PenaltyDraft:
    """A penalty an assessment hook proposes; an auditor publishes it (CORE-03)."""

    rule_id: str
    unit_id: int
    user_id: int
    occurred_at: datetime
    evidence: str
    amount: Decimal | None = None


@dataclass(frozen=True)
class SlaPolicy:
    """A deadline a plugin owns: a duration on wall-clock time or on working hours."""

    id: str  # "<plugin>.<timer>", e.g. "express.l1_customer_reply"
    setting_key: str  # the per-unit setting that holds the duration in minutes
    calendar: str = "wall"  # "wall" or "working"
    rule: str = ""
    pausable: bool = False  # whether the plugin may pause and resume the timer
