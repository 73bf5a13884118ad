"""Demo network of 能达速递: HQ with its network management department, two regions, each
with a sorting center, a network manager and three stations; users at every level and a
few inquiries in different states.  Idempotent: what exists is left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugins.express import service as svc
from plugins.express.models import Inquiry, Partner, Relabel, UnitLevel
from portal.audit import record
from portal.auth.models import Membership, User
from portal.db_types import utcnow
from portal.units.models import Unit, set_plugin

# code, parent, kind, level (None: from the kind), zh, en
UNITS = [
    ("express-hq", "demo", "region", "network", "能达速递总部客服部", "Nengda HQ Customer Service"),
    ("express-netdept", "express-hq", "center", "netdept", "管理本部网络管理部", "Network Management Dept."),
    ("express-east-center", "express-east", "center", None, "华东区上海分拨中心客服", "Shanghai Sorting Center CS"),
    ("express-east-net", "express-east", "center", "network", "华东区辖区网管", "East Region Network Manager"),
    ("express-sh-minhang", "express-east", "station", None, "能达速递上海闵行站", "Nengda Shanghai Minhang Station"),
    ("express-sh-jiading", "express-east", "station", None, "能达速递上海嘉定站", "Nengda Shanghai Jiading Station"),
    ("express-south", "demo", "region", None, "能达速递华南区", "Nengda Express South Region"),
    ("express-south-center", "express-south", "center", None, "华南区广州分拨中心客服", "Guangzhou Sorting Center CS"),
    ("express-south-net", "express-south", "center", "network", "华南区辖区网管", "South Region Network Manager"),
    ("express-gz-tianhe", "express-south", "station", None, "能达速递广州天河站", "Nengda Guangzhou Tianhe Station"),
    ("express-gz-baiyun", "express-south", "station", None, "能达速递广州白云站", "Nengda Guangzhou Baiyun Station"),
    ("express-sz-nanshan", "express-south", "station", None, "能达速递深圳南山站", "Nengda Shenzhen Nanshan Station"),
]

# username, name, unit, role
USERS = [
    ("express.l2", "闵行站客服 刘芳", "express-sh-minhang", "staff"),
    ("express.center", "分拨中心客服 黄磊", "express-east-center", "staff"),
    ("express.center.lead", "中心客服主管 吴敏", "express-east-center", "supervisor"),
    ("express.net", "辖区网管 郑伟", "express-east-net", "staff"),
    ("express.hq", "总部客服 何静", "express-hq", "staff"),
    ("express.netdept", "网络管理部 冯涛", "express-netdept", "staff"),
    ("express.south", "天河站客服 林晓", "express-gz-tianhe", "staff"),
    ("express.station.manager", "浦东站站点经理 许刚", "express-sh", "manager"),
]

STRANDED = {"express-east-center": ("滞留件专员 钱亮", "021-55550101"),
            "express-south-center": ("滞留件专员 孔丽", "020-55550202")}


def _units(session, units: dict[str, Unit], actor: User) -> None:
    for code, parent, kind, level, name_zh, name_en in UNITS:
        unit = session.scalar(select(Unit).where(Unit.code == code))
        if unit is None:
            unit = Unit(code=code, name_zh=name_zh, name_en=name_en, kind=kind, parent_id=units[parent].id)
            session.add(unit)
            session.flush()
            record("unit.created", "unit", unit.id, unit_id=unit.id, actor=actor, after={"code": code, "demo": True})
        units[code] = unit
        contact = STRANDED.get(code, ("", ""))
        if (level or contact[0]) and session.scalar(select(UnitLevel.id).where(UnitLevel.unit_id == unit.id)) is None:
            svc.set_level(unit, level or svc.level_of(unit), actor, *contact)
    for code in ("express-east", "express-south", "express-hq"):
        set_plugin(units[code], "express", True)


def _users(session, units, users, password_hash: str) -> None:
    for username, name, unit_code, role in USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = User(username=username, display_name=name, password_hash=password_hash)
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, unit_id=units[unit_code].id, role=role))
            record("user.created", "user", user.id, after={"username": username, "demo": True})
        elif user.password_hash != password_hash:  # the demo password changed: same as the core's users
            user.password_hash = password_hash
        users[username] = user


def _inquiries(session, units, users) -> None:
    if session.scalar(select(Inquiry.id).limit(1)) is not None:
        return
    now = utcnow()
    l1, sh = users["express.staff"], units["express-sh"]
    facts = {"send_time": "2026-11-30 16:00", "appearance": "黄色纸箱", "packaging": "纸箱+胶带",
             "pieces": "1", "weight": "2.4", "destination": "上海闵行区莘庄", "recipient": "陈女士 139****1234"}

    def take(waybill, name, phone, minutes_ago, org=""):
        return svc.take_inquiry(sh, l1, waybill=waybill, inquirer_name=name, inquirer_phone=phone,
                                inquirer_org=org, at=now - timedelta(minutes=minutes_ago))

    # 1: just taken, the customer's clock is running
    take("600123456781", "王先生", "13812345678", 5, "上海某贸易公司")
    # 2: with the destination station, which has done two checks
    second = take("600123456782", "李女士", "13912345678", 12)
    hop = svc.forward(second, l1, units["express-sh-minhang"], at=now - timedelta(minutes=10))
    second.facts = dict(facts)
    svc.record_check(hop, users["express.l2"], "record", "已记录发件信息", at=now - timedelta(minutes=8))
    svc.record_check(hop, users["express.l2"], "arrived", "系统显示 11-30 已到站", at=now - timedelta(minutes=6))
    # 3: not found at L2, now with the center
    third = take("600123456783", "赵经理", "021-61234567", 25, "某电子公司")
    hop = svc.forward(third, l1, units["express-sh-minhang"], at=now - timedelta(minutes=24))
    third.facts = dict(facts)
    for step, result in (("record", "已记录"), ("arrived", "未到站"), ("shelves", "问题件、滞留件、无名件均无"),
                         ("courier", "派送员未见此件"), ("signatures", "无漏传签收")):
        svc.record_check(hop, users["express.l2"], step, result, at=now - timedelta(minutes=20))
    svc.forward(third, users["express.l2"], units["express-east-center"], from_hop=hop,
                message="站点未查到，请中心协查", at=now - timedelta(minutes=15))
    # 4: found by the center, answered and closed
    fourth = take("600123456784", "孙女士", "13700001111", 90)
    hop = svc.forward(fourth, l1, units["express-sh-minhang"], at=now - timedelta(minutes=88))
    fourth.facts = dict(facts)
    for step in ("record", "arrived", "shelves", "courier", "signatures"):
        svc.record_check(hop, users["express.l2"], step, "已查", at=now - timedelta(minutes=80))
    up = svc.forward(fourth, users["express.l2"], units["express-east-center"], from_hop=hop, at=now - timedelta(minutes=75))
    svc.reply(up, users["express.center"], "found", "在中心无名件区找到，今日随车发往闵行站", at=now - timedelta(minutes=60))
    svc.tell_customer(fourth, l1, "result", "快件已找到，今天下午送达", at=now - timedelta(minutes=55))
    # 5: the tracking shows a signature: answered at once (EXP-R02)
    fifth = take("600123456785", "周先生", "13655556666", 40)
    svc.close_signed(fifth, l1, signer="门卫代签", signed_at=now - timedelta(days=1),
                     answer="系统显示昨日已由门卫代签，请到门卫室领取", at=now - timedelta(minutes=39))
    session.add(Partner(unit_id=units["express-hq"].id, name="顺通代理派送（崇明）", area="上海崇明区",
                        phone="021-59990000"))
    session.add(Partner(unit_id=units["express-hq"].id, name="粤安代理派送（从化）", area="广州从化区",
                        phone="020-87770000"))
    session.add(Relabel(old_waybill="600123450001", new_waybill="600123450002",
                        unit_id=units["express-east-center"].id, reason="面单破损，中心换单",
                        by_id=users["express.center"].id, at=now - timedelta(days=2)))


def seed(session, units: dict[str, Unit], users: dict[str, User]) -> None:
    admin = users.get("admin")
    _units(session, units, admin)
    _users(session, units, users, users["express.staff"].password_hash)
    session.flush()
    _inquiries(session, units, users)
