"""Tracking lookups (EXP-R02): what the carrier's system says about a waybill.

Before passing an inquiry on, the agent checks the tracking; a signature (签收)
answers the customer at once.  The portal asks a **tracking adapter**::

    class TrackingAdapter(Protocol):
        def lookup(self, waybill: str) -> list[TrackingStatus]: ...

``lookup`` returns the statuses of one waybill, oldest first, each a
``TrackingStatus(at, status, place, signer)`` with ``at`` an aware UTC datetime and
``status`` one of ``collected``, ``in_transit``, ``arrived``, ``delivering``,
``signed`` (``signer`` is who signed, for ``signed``).  It returns ``[]`` for an
unknown waybill and raises ``TrackingError`` when the carrier cannot be asked; the
inquiry page then says the tracking is unavailable instead of failing.

The adapter is chosen by the config key (or environment variable)
``PORTAL_EXPRESS_TRACKING``: the dotted path of a class, ``package.module.Class`` or
``package.module:Class``, built without arguments once per application.  The default
is ``plugins.express.tracking.DatabaseAdapter``, which reads the
``express_tracking_events`` table, filled by hand and by CSV import
(``/express/tracking``).

Writing a real carrier adapter: put a class in any importable module, e.g.::

    # mycompany/nengda_api.py
    import requests
    from plugins.express.tracking import TrackingError, TrackingStatus, parse_carrier_time

    class NengdaApiAdapter:
        def __init__(self):
            self.session = requests.Session()          # reused between lookups

        def lookup(self, waybill):
            try:
                reply = self.session.get("https://api.example/track", params={"no": waybill},
                                         timeout=5)
                reply.raise_for_status()
            except requests.RequestException as exc:
                raise TrackingError(str(exc)) from exc
            return [TrackingStatus(at=parse_carrier_time(e["time"]), status=MAP[e["code"]],
                                   place=e.get("site", ""), signer=e.get("signer", ""))
                    for e in reply.json()["events"]]

and start the portal with ``PORTAL_EXPRESS_TRACKING=mycompany.nengda_api.NengdaApiAdapter``.
Keep lookups fast (a short timeout: the inquiry page waits for it), map the carrier's
codes to the five statuses above, and convert its local times to UTC.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plugins.express import rules
from plugins.express.models import TrackingEvent
from portal.audit import record
from portal.auth.models import User
from portal.extensions import db
from portal.plugin_api import InputError, parse_datetime, to_utc
from portal.sla.stats import FORMULA_START
from portal.units.models import Unit

log = logging.getLogger(__name__)

CONFIG_KEY = "PORTAL_EXPRESS_TRACKING"
DEFAULT_ADAPTER = "plugins.express.tracking.DatabaseAdapter"

COLLECTED, IN_TRANSIT, ARRIVED = "collected", "in_transit", "arrived"
DELIVERING, SIGNED = "delivering", "signed"
STATUSES = (COLLECTED, IN_TRANSIT, ARRIVED, DELIVERING, SIGNED)
STATUS_LABELS = {
    COLLECTED: _l("Collected"),
    IN_TRANSIT: _l("In transit"),
    ARRIVED: _l("Arrived at the destination station"),
    DELIVERING: _l("Out for delivery"),
    SIGNED: _l("Signed for"),
}

TIME_FORMAT = "%Y-%m-%d %H:%M"
CSV_COLUMNS = ("waybill", "time", "status", "place", "signer")
MAX_IMPORT_BYTES = 1024 * 1024
MAX_IMPORT_ROWS = 5000
PLACE_MAX, SIGNER_MAX = 120, 80
FORMULA_ERROR = _l("Cannot start with = + - @ (a spreadsheet would run it as a formula).")


class TrackingError(RuntimeError):
    """The tracking system cannot be asked now."""


@dataclass(frozen=True)
class TrackingStatus:
    at: datetime
    status: str
    place: str = ""
    signer: str = ""

    @property
    def label(self) -> str:
        return str(STATUS_LABELS.get(self.status, self.status))

    @property
    def is_signed(self) -> bool:
        return self.status == SIGNED


class TrackingAdapter(Protocol):
    def lookup(self, waybill: str) -> list[TrackingStatus]: ...


class DatabaseAdapter:
    """Statuses entered by hand or imported from a CSV (``TrackingEvent``)."""

    def lookup(self, waybill: str) -> list[TrackingStatus]:
        rows = db.session.execute(
            select(TrackingEvent.at, TrackingEvent.status, TrackingEvent.place, TrackingEvent.signer)
            .where(TrackingEvent.waybill == (waybill or "").strip())
            .order_by(TrackingEvent.at, TrackingEvent.id))
        return [TrackingStatus(at, status, place or "", signer or "") for at, status, place, signer in rows]


def _load_class(path: str):
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def adapter() -> TrackingAdapter:
    """The configured adapter (built once per application)."""
    path = current_app.config.get(CONFIG_KEY) or os.environ.get(CONFIG_KEY) or DEFAULT_ADAPTER
    cache = current_app.extensions.setdefault("express_tracking", {})
    if path not in cache:
        cache[path] = _load_class(path)()
    return cache[path]


@dataclass
class Tracking:
    """What the inquiry page shows: every status (oldest first), the latest, the signature."""

    statuses: list[TrackingStatus] = field(default_factory=list)
    unavailable: bool = False

    @property
    def latest(self) -> TrackingStatus | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def signed(self) -> TrackingStatus | None:
        return next((s for s in reversed(self.statuses) if s.is_signed), None)


def tracking_for(waybill: str) -> Tracking:
    """The tracking of ``waybill`` for a page; a failing carrier gives ``unavailable``."""
    try:
        statuses = sorted(adapter().lookup(waybill), key=lambda s: s.at)
    except Exception:  # an external system: the page must still show
        log.exception("tracking lookup failed for %s", waybill)
        return Tracking(unavailable=True)
    return Tracking(statuses)


def parse_carrier_time(text: str, zone: ZoneInfo | None = None) -> datetime:
    """``YYYY-MM-DD HH:MM`` in ``zone`` (default Asia/Shanghai) as an aware UTC datetime."""
    local = parse_datetime(text, formats=(TIME_FORMAT,))
    return to_utc(local, zone or ZoneInfo("Asia/Shanghai"))


# --- entering statuses (manual and CSV) -------------------------------------------------------


@dataclass
class Entry:
    waybill: str
    at: datetime
    status: str
    place: str
    signer: str


def check_entry(waybill: str, local_time: datetime | None, status: str, place: str, signer: str, *,
                pattern: str, zone: ZoneInfo, now: datetime) -> tuple[Entry | None, dict[str, str]]:
    """One status, validated: ``(entry, {})`` or ``(None, {field: message})``.

    ``local_time`` is a naive wall time in ``zone``; it may not be in the future.  A
    ``signed`` status names its signer; other statuses name none.  A place or signer that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``…) is refused: carrier
    data never starts so, and these texts go back out in lists and exports.
    """
    errors: dict[str, str] = {}
    waybill, place, signer = (waybill or "").strip(), (place or "").strip(), (signer or "").strip()
    error = rules.waybill_error(waybill, pattern)
    if error:
        errors["waybill"] = str(error)
    at = None
    if local_time is None:
        errors["time"] = str(_l("A local time such as 2026-11-16 10:00."))
    else:
        at = rules.local_instant(local_time, zone)
        if at is None:
            errors["time"] = str(rules.date_range_error())
        elif at > now:
            errors["time"] = str(_l("The time cannot be in the future."))
    if status not in STATUSES:
        errors["status"] = str(_l("One of: %(statuses)s.", statuses=", ".join(STATUSES)))
    if len(place) > PLACE_MAX:
        errors["place"] = str(_l("At most %(n)s characters.", n=PLACE_MAX))
    elif place.startswith(FORMULA_START):
        errors["place"] = str(FORMULA_ERROR)
    if len(signer) > SIGNER_MAX:
        errors["signer"] = str(_l("At most %(n)s characters.", n=SIGNER_MAX))
    elif signer.startswith(FORMULA_START):
        errors["signer"] = str(FORMULA_ERROR)
    elif status == SIGNED and not signer:
        errors["signer"] = str(_l("A signed status names who signed for the parcel."))
    elif status in STATUSES and status != SIGNED and signer:
        errors["signer"] = str(_l("Only a signed status names a signer."))
    if errors:
        return None, errors
    return Entry(waybill, at, status, place, signer), {}


def _exists(entry: Entry) -> bool:
    return db.session.scalar(select(TrackingEvent.id).where(
        TrackingEvent.waybill == entry.waybill, TrackingEvent.at == entry.at,
        TrackingEvent.status == entry.status).limit(1)) is not None


def _recorded(waybills: set[str]) -> set[tuple]:
    """``(waybill, at, status)`` of the statuses already recorded for ``waybills``."""
    out: set[tuple] = set()
    ordered = sorted(waybills)
    for i in range(0, len(ordered), 500):
        out.update(tuple(row) for row in db.session.execute(
            select(TrackingEvent.waybill, TrackingEvent.at, TrackingEvent.status)
            .where(TrackingEvent.waybill.in_(ordered[i:i + 500]))))
    return out


def _event(entry: Entry, unit: Unit, user: User, source: str) -> TrackingEvent:
    return TrackingEvent(waybill=entry.waybill, at=entry.at, status=entry.status, place=entry.place,
                         signer=entry.signer, source=source, unit_id=unit.id, by_id=user.id)


def _plain(entry: Entry) -> dict:
    return {"waybill": entry.waybill, "at": entry.at, "status": entry.status, "place": entry.place,
            "signer": entry.signer}


def _insert(events: list[TrackingEvent]) -> bool:
    """Add the statuses; ``False`` (nothing added) if one was recorded meanwhile by someone else
    — the unique (waybill, time, status) refuses a second copy."""
    try:
        with db.session.begin_nested():
            db.session.add_all(events)
    except IntegrityError:
        return False
    return True


def add_status(entry: Entry, unit: Unit, user: User) -> TrackingEvent | None:
    """Record one status entered by hand (``None``: the same status is already recorded)."""
    if _exists(entry):
        return None
    event = _event(entry, unit, user, "manual")
    if not _insert([event]):
        return None
    record("express.tracking_added", "express_tracking_event", event.id, unit_id=unit.id, actor=user,
           after={**_plain(entry), "source": "manual"})
    return event


@dataclass
class ImportResult:
    entries: list[Entry] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)
    imported: int = 0
    skipped: int = 0


def _decode(data: bytes) -> str | None:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def parse_csv(data: bytes, *, pattern: str, zone: ZoneInfo, now: datetime) -> ImportResult:
    """Validate a whole CSV (``waybill,time,status,place,signer``); errors by line number."""
    result = ImportResult()
    if len(data) > MAX_IMPORT_BYTES:
        result.errors.append((0, str(_l("The file is larger than %(n)s KiB.", n=MAX_IMPORT_BYTES // 1024))))
        return result
    text = _decode(data)
    if text is None:
        result.errors.append((0, str(_l("The file is not UTF-8 (or GB18030) text."))))
        return result
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != list(CSV_COLUMNS):
            result.errors.append((1, str(_l("The first line must be the header %(header)s.",
                                             header=",".join(CSV_COLUMNS)))))
            return result
        rows = 0
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            rows += 1
            if rows > MAX_IMPORT_ROWS:
                result.errors.append((line, str(_l("At most %(n)s statuses per file.", n=MAX_IMPORT_ROWS))))
                break
            if len(cells) != len(CSV_COLUMNS):
                result.errors.append((line, str(_l("Expected %(n)s columns, found %(found)s.",
                                                   n=len(CSV_COLUMNS), found=len(cells)))))
                continue
            waybill, time_text, status, place, signer = cells
            try:
                local = parse_datetime(time_text, formats=(TIME_FORMAT,))
            except InputError:
                local = None
            entry, errors = check_entry(waybill, local, status.strip(), place, signer, pattern=pattern,
                                        zone=zone, now=now)
            for name, message in errors.items():
                result.errors.append((line, f"{name}: {message}"))
            if entry is not None:
                result.entries.append(entry)
    except csv.Error as exc:
        result.errors.append((reader.line_num, str(_l("Not a readable CSV: %(error)s", error=str(exc)))))
    if not result.errors and not result.entries:
        result.errors.append((0, str(_l("The file has no statuses."))))
    return result


def import_csv(data: bytes, filename: str, unit: Unit, user: User, *, pattern: str, zone: ZoneInfo,
               now: datetime) -> ImportResult:
    """All or nothing: nothing is added if any line is wrong; statuses already recorded are skipped."""
    result = parse_csv(data, pattern=pattern, zone=zone, now=now)
    if result.errors:
        return result
    seen = _recorded({e.waybill for e in result.entries})
    events = []
    for entry in result.entries:
        key = (entry.waybill, entry.at, entry.status)
        if key in seen:
            result.skipped += 1
            continue
        seen.add(key)
        events.append(_event(entry, unit, user, "csv"))
    if not _insert(events):
        result.errors.append((0, str(_l("The same statuses were recorded meanwhile: import the file "
                                        "again, they will be skipped."))))
        return result
    result.imported = len(events)
    record("express.tracking_imported", "express_tracking_import", hashlib.sha256(data).hexdigest()[:16],
           unit_id=unit.id, actor=user,
           after={"file": filename, "sha256": hashlib.sha256(data).hexdigest(), "imported": result.imported,
                  "skipped": result.skipped, "ids": [e.id for e in events]})
    return result
