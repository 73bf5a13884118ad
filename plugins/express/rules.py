"""The inquiry ladder of 能达速递 (seed 000, 第一篇) as pure rules, testable without Flask.

Stages (levels) of an inquiry, each a business unit of a configured *level*:

====== ===================== ==================================================
stage  unit level            who
====== ===================== ==================================================
1      ``station``           the station CS that took the customer's call (L1)
2      ``station``           the destination station (L2), another station
3      ``center``            辖区/区域中心客服 (L3); its 客服主管/经理 above it
4      ``network``           区域网管 / 总部客服 (L4)
5      ``netdept``           管理本部网络管理部 (L4, cross-region results)
—      ``vp``                分管副总裁: intervenes, never takes an inquiry
====== ===================== ==================================================

A forward goes only to the next stage (EXP-R03..R08, R14).  Besides the ladder, the
center CS may raise a case to its supervisor (R11, 40 min) and the supervisor may ask
the 辖区网管 (a ``network`` unit) to assist (R11, 30 min); the reply to the station and
its clock stay with customer service (S0:68).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.plugin_api import FIRST_YEAR as CORE_FIRST_YEAR
from portal.plugin_api import LAST_YEAR as CORE_LAST_YEAR
from portal.plugin_api import MAX_ID as PORTAL_MAX_ID
from portal.plugin_api import InputError, parse_decimal, to_utc

# --- levels and stages ---------------------------------------------------------------------

LEVELS = ("station", "center", "network", "netdept", "vp")
STAGE_LEVEL = {1: "station", 2: "station", 3: "center", 4: "network", 5: "netdept"}
TOP_STAGE = 5

# hop kinds: a forward up the ladder, or a side request at stage 3
FORWARD, SUPERVISOR, ASSIST = "forward", "supervisor", "assist"

# reply outcomes
FOUND, NOT_FOUND, PROGRESS = "found", "not_found", "progress"

OUTCOME_LABELS = {FOUND: _l("Found"), NOT_FOUND: _l("Not found here"), PROGRESS: _l("Progress")}


def outcome_label(outcome: str | None) -> str:
    return str(OUTCOME_LABELS[outcome]) if outcome in OUTCOME_LABELS else "—"


# which deadline policy each hop runs on
HOP_POLICY = {2: "express.hop_reply", 3: "express.hop_reply", 4: "express.network",
              5: "express.netdept"}
SIDE_POLICY = {SUPERVISOR: "express.supervisor", ASSIST: "express.assist"}


def default_level(unit_kind: str) -> str | None:
    """The level a unit has until an admin sets one: stations and centers by their kind."""
    return {"station": "station", "center": "center", "region": "network"}.get(unit_kind)


class LadderError(ValueError):
    """A step the ladder refuses.  ``code`` is logged; ``field`` names the form field."""

    def __init__(self, message, code: str, field: str | None = None):
        super().__init__(str(message))
        self.message, self.code, self.field = message, code, field


def check_forward(from_stage: int, origin_unit_id: int, target_unit_id: int,
                  target_level: str | None, agent_delivered: bool = False) -> int:
    """The stage a forward from ``from_stage`` reaches, or ``LadderError`` (EXP-R14).

    Refused: a target at VP level (accepts no inquiries), a level that skips one, a
    sideways or downward forward, and a "destination station" that is the asking station.
    An agent-delivered parcel has no destination station: the distribution center's CS
    handles its inquiry (归口查询, EXP-R16), so the station asks the center directly.
    """
    if agent_delivered and from_stage == 1 and target_level == "center":
        return 3
    if target_level == "vp":
        raise LadderError(_l("The vice-president level accepts no inquiries (EXP-R14)."), "vp", "target")
    if from_stage >= TOP_STAGE:
        raise LadderError(_l("This is the top of the inquiry ladder: ask the director for a "
                             "VP intervention instead (EXP-R08)."), "top", "target")
    stage = from_stage + 1
    wanted = STAGE_LEVEL[stage]
    if target_level != wanted:
        code = "skip" if target_level in LEVELS and LEVELS.index(target_level) > LEVELS.index(wanted) \
            else "sideways"
        raise LadderError(_l("An inquiry goes only to the next level: %(level)s (no 越级, EXP-R14).",
                             level=level_label(wanted)), code, "target")
    if stage == 2 and target_unit_id == origin_unit_id:
        raise LadderError(_l("The destination station must be another station."), "same_station",
                          "target")
    return stage


def check_side(kind: str, from_stage: int, from_kind: str, target_level: str | None,
               same_unit: bool) -> None:
    """A supervisor escalation (from a stage-3 forward, same center) or a 网管 assist request
    (from a supervisor hop, to a network unit) — EXP-R11."""
    if target_level == "vp":
        raise LadderError(_l("The vice-president level accepts no inquiries (EXP-R14)."), "vp", "target")
    if kind == SUPERVISOR:
        if from_stage != 3 or from_kind != FORWARD or not same_unit:
            raise LadderError(_l("Only the center's customer service raises an inquiry to its "
                                 "supervisor (EXP-R11)."), "supervisor")
    elif kind == ASSIST:
        if from_kind != SUPERVISOR or target_level != "network":
            raise LadderError(_l("Only the supervisor asks the regional network manager to "
                                 "assist (EXP-R11)."), "assist", "target")
    else:
        raise LadderError(_l("Unknown request."), "kind")


def reply_outcomes(stage: int, kind: str) -> tuple[str, ...]:
    """What a hop may answer: found / not found; a supervisor and 网络管理部 may also report
    progress, which for 网络管理部 does not stop its clock (EXP-R11, R12)."""
    if kind == SUPERVISOR or stage == 5:
        return (FOUND, NOT_FOUND, PROGRESS)
    return (FOUND, NOT_FOUND)


def progress_stops_clock(stage: int, kind: str) -> bool:
    return kind == SUPERVISOR and stage != 5


# --- checklists (EXP-R04, R07, R08) ----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    key: str
    label_zh: str
    label_en: str


# Steps in groups: a group may start only when every earlier group is done; steps inside
# one group are done together (同时), in either order.
CHECKLISTS: dict[int, tuple[tuple[Step, ...], ...]] = {
    2: (
        (Step("record", "①问明发件时间、外包装、件数、重量、收件人名址，做好记录",
              "① Record send time, packaging, pieces, weight, recipient"),),
        (Step("arrived", "②确定快件是否到达", "② Has the parcel arrived?"),),
        (Step("shelves", "③到仓库问题件、滞留件、无名件中查找",
              "③ Search the problem / stranded / unnamed shelves"),),
        (Step("courier", "④拨打承包区或派送人员问询", "④ Call the courier of the area"),
         Step("signatures", "⑤查看签收运单，以免漏上传签收信息",
              "⑤ Check signed waybills not yet uploaded")),
    ),
    3: (
        (Step("record", "①问明情况，做好查询记录", "① Record the case"),),
        (Step("system", "②网上或系统中查看情况", "② Check the tracking system"),),
        (Step("shelves", "③在问题件、无名件、破损件、违禁品件、滞留件中查找",
              "③ Search problem / unnamed / damaged / prohibited / stranded parcels"),
         Step("cctv", "④通知监控人员调看操作路径", "④ Ask monitoring (CCTV) to trace the path")),
        (Step("missort", "⑤分析错分错发区域，联系各中心客服及关联站点联动查询",
              "⑤ Analyse mis-sort areas; query other centers and linked stations"),),
    ),
    4: (
        (Step("mode", "①确定汽运件、航空件，了解当日汽运及航班情况",
              "① Road or air? Today's trucks and flights"),),
        (Step("airline", "②向航空部门、航空代理查询发货及航班情况",
              "② Ask the air department and airline agent"),
         Step("arrival", "③核对目的地提货、到件扫描情况", "③ Check arrival pickup and scans"),
         Step("analysis", "④⑤会同航空部、汽运部、运力部分析可能原因",
              "④⑤ Analyse with the air, road and capacity departments"),
         Step("stations", "⑥发挥区域网管熟悉站点情况的优势协调排查",
              "⑥ Use the network manager's knowledge of the stations")),
    ),
}


def steps(stage: int) -> list[Step]:
    return [step for group in CHECKLISTS.get(stage, ()) for step in group]


def step_label(stage: int, key: str, lang: str = "zh") -> str:
    for step in steps(stage):
        if step.key == key:
            return step.label_en if lang == "en" else step.label_zh
    return key


def check_step(stage: int, done: set[str], key: str) -> None:
    """``LadderError`` unless ``key`` may be recorded now, given the steps ``done``."""
    groups = CHECKLISTS.get(stage, ())
    for index, group in enumerate(groups):
        if key in {s.key for s in group}:
            if key in done:
                raise LadderError(_l("This check is already recorded."), "step_done", "step")
            earlier = [s for g in groups[:index] for s in g if s.key not in done]
            if earlier:
                raise LadderError(_l("Record the earlier checks first, in order (%(steps)s)."
                                     , steps=", ".join(s.label_zh[:1] for s in earlier)),
                                  "step_order", "step")
            return
    raise LadderError(_l("Unknown check."), "step", "step")


def missing_steps(stage: int, done: set[str]) -> list[Step]:
    return [s for s in steps(stage) if s.key not in done]


# --- facts a forward needs (EXP-R04, R06, R07) ------------------------------------------------

FACTS = ("send_time", "appearance", "packaging", "pieces", "weight", "destination")


def missing_facts(facts: dict) -> list[str]:
    return [name for name in FACTS if not str(facts.get(name) or "").strip()]


def forward_requirements(to_stage: int, facts: dict, done_steps: set[str], from_stage: int) -> list[str]:
    """What is missing before a forward to ``to_stage``: fact names and ``step:<key>``.

    To the destination station nothing more than the intake; above it the parcel data
    (R06) and the sending level's checks — the steps already taken (R07).
    """
    if to_stage <= 2 or from_stage == 1:  # from the station: the receiving level records (①)
        return []
    missing = missing_facts(facts)
    missing += [f"step:{s.key}" for s in missing_steps(from_stage, done_steps)]
    return missing


# --- intake validation (EXP-R01) --------------------------------------------------------------

PHONE = re.compile(r"^(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:-\d{1,6})?|400-?\d{3}-?\d{4})$")
DEFAULT_WAYBILL_PATTERN = r"^\d{10,14}$"


def normalise_phone(text: str) -> str:
    return re.sub(r"[\s()（）]", "", text or "")


def phone_error(text: str):
    if not PHONE.match(normalise_phone(text)):
        return _l("A mobile number (11 digits) or a landline such as 021-12345678.")
    return None


def waybill_error(text: str, pattern: str):
    try:
        ok = re.fullmatch(pattern, (text or "").strip()) is not None
    except re.error:
        ok = False
    if not ok:
        return _l("Not a waybill number of this network (expected pattern %(pattern)s).",
                  pattern=pattern)
    return None


def pattern_error(pattern: str) -> None:
    """Validator of the waybill-pattern setting."""
    from portal.plugin_api import SettingError

    try:
        re.compile(pattern)
    except re.error as exc:
        raise SettingError(_l("not a regular expression: %(error)s", error=str(exc))) from exc


MAX_WEIGHT = Decimal("100000")  # kg


def parse_weight(text: str) -> Decimal | None:
    """A weight in kg (up to three decimals), as typed, or ``None``."""
    try:
        return parse_decimal(text, places=3, minimum=Decimal("0.001"), maximum=MAX_WEIGHT)
    except InputError:
        return None


# --- bounds of what is typed (the core's: portal.inputs) --------------------------------------

MAX_ID = PORTAL_MAX_ID  # the largest id an integer column holds: a larger one is no record, not a 500
FIRST_YEAR, LAST_YEAR = CORE_FIRST_YEAR, CORE_LAST_YEAR  # no parcel, signature or complaint is older


def local_instant(local: datetime, zone: tzinfo) -> datetime | None:
    """A naive wall time in ``zone`` as a UTC instant; ``None`` outside ``FIRST_YEAR``..``LAST_YEAR``
    (year 1 in UTC+8 is not a date the database or Python can hold)."""
    if not FIRST_YEAR <= local.year <= LAST_YEAR:
        return None
    return to_utc(local, zone)


def date_range_error():
    """What a date out of ``local_instant``'s range is told (the format hint: a typo, most likely)."""
    return _l("A local time such as 2026-11-16 10:00.")


def level_label(level: str | None) -> str:
    return str(LEVEL_LABELS.get(level, level or "—"))


LEVEL_LABELS = {
    "station": _l("Station CS"),
    "center": _l("Regional center CS"),
    "network": _l("Regional network manager / HQ CS"),
    "netdept": _l("Network management department"),
    "vp": _l("Vice-president"),
}

STAGE_LABELS = {
    1: _l("L1 station"),
    2: _l("L2 destination station"),
    3: _l("L3 center CS"),
    4: _l("L4 network manager"),
    5: _l("L4 network management dept."),
}

KIND_LABELS = {
    FORWARD: _l("Forward"),
    SUPERVISOR: _l("Supervisor (40 min)"),
    ASSIST: _l("Network manager assists"),
}
