"""A small 能达 network for the express tests.

acme (company, express on)
├─ hq (region, level network: 总部客服)      — hq_cs
│  └─ netdept (center, level netdept)         — nd
│  └─ vp (center, level vp)                    — vp
├─ east (region; default level network)       — east_mgr (manager), auditor ada at acme
│  ├─ pudong (station)   — amy (staff, L1), pete (manager: the station manager)
│  ├─ minhang (station)  — bob (staff, L2)
│  ├─ center (center)    — cal (staff, L3), sue (supervisor)
│  └─ eastnet (center, level network: 辖区网管) — ned (staff)
└─ south (region) > tianhe (station) — tia (staff)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest

from plugins.express import service as svc
from portal.auth.models import User
from portal.extensions import db
from portal.testing import make_unit, make_user
from portal.units.models import Unit

T0 = datetime(2026, 11, 16, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai


@dataclass
class Net:
    units: dict[str, Unit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def __getattr__(self, name):
        if name in self.units:
            return self.units[name]
        if name in self.users:
            return self.users[name]
        raise AttributeError(name)


@pytest.fixture
def net(app) -> Net:
    n = Net()
    acme = make_unit("acme", kind="company", plugins={"express": True})
    hq = make_unit("hq", acme, kind="region")
    n.units.update(acme=acme, hq=hq)
    n.units["netdept"] = make_unit("netdept", hq, kind="center")
    n.units["vp"] = make_unit("vp", hq, kind="center")
    east = make_unit("east", acme, kind="region")
    n.units["east"] = east
    for code, kind in (("pudong", "station"), ("minhang", "station"), ("center", "center"),
                       ("eastnet", "center")):
        n.units[code] = make_unit(code, east, kind=kind)
    south = make_unit("south", acme, kind="region")
    n.units["south"] = south
    n.units["tianhe"] = make_unit("tianhe", south, kind="station")
    admin = make_user("root", (acme, "admin"))
    for code, level in (("hq", "network"), ("netdept", "netdept"), ("vp", "vp"), ("eastnet", "network")):
        svc.set_level(n.units[code], level, admin)
    db.session.commit()
    for name, unit, role in (("amy", "pudong", "staff"), ("pete", "pudong", "manager"),
                             ("bob", "minhang", "staff"), ("cal", "center", "staff"),
                             ("sue", "center", "supervisor"), ("ned", "eastnet", "staff"),
                             ("hq_cs", "hq", "staff"), ("nd", "netdept", "staff"), ("vpu", "vp", "staff"),
                             ("tia", "tianhe", "staff"), ("east_mgr", "east", "manager"),
                             ("ada", "acme", "auditor"), ("aldo", "acme", "auditor")):
        n.users[name] = make_user(name, (n.units[unit], role), locale="en")
    n.users["root"] = admin
    return n


FACTS = {"send_time": "2026-11-15 16:00", "appearance": "yellow box", "packaging": "carton",
         "pieces": "1", "weight": "2.4", "destination": "Minhang, Shanghai", "recipient": "Ms Chen"}
L2_STEPS = ("record", "arrived", "shelves", "courier", "signatures")
L3_STEPS = ("record", "system", "shelves", "cctv", "missort")


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def new_inquiry(net: Net, at: datetime = T0, waybill: str = "600123456789"):
    inquiry = svc.take_inquiry(net.pudong, net.amy, waybill=waybill, inquirer_name="Mr Wang",
                               inquirer_phone="13812345678", at=at)
    db.session.commit()
    return inquiry


def at_l2(net: Net, at: datetime = T0):
    inquiry = new_inquiry(net, at)
    hop = svc.forward(inquiry, net.amy, net.minhang, at=at + minutes(2))
    db.session.commit()
    return inquiry, hop


def l2_done(net: Net, at: datetime = T0):
    """At L2 with the parcel data and all five checks recorded by bob."""
    inquiry, hop = at_l2(net, at)
    svc.save_facts(inquiry, hop, net.bob, FACTS, at=at + minutes(3))
    for step in L2_STEPS:
        svc.record_check(hop, net.bob, step, f"{step}: nothing", at=at + minutes(5))
    db.session.commit()
    return inquiry, hop


def at_l3(net: Net, at: datetime = T0):
    inquiry, l2 = l2_done(net, at)
    l3 = svc.forward(inquiry, net.bob, net.center, from_hop=l2, at=at + minutes(8))
    db.session.commit()
    return inquiry, l2, l3


L4_STEPS = ("mode", "airline", "arrival", "analysis", "stations")


def at_netdept(net: Net, at: datetime = T0):
    """Passed up to 网络管理部 (stage 5): the center and the 网管 did all their checks."""
    inquiry, l2, l3 = at_l3(net, at)
    for step in L3_STEPS:
        svc.record_check(l3, net.cal, step, "done", at=at + minutes(10))
    l4 = svc.forward(inquiry, net.cal, net.eastnet, from_hop=l3, at=at + minutes(12))
    for step in L4_STEPS:
        svc.record_check(l4, net.ned, step, "done", at=at + minutes(14))
    l5 = svc.forward(inquiry, net.ned, net.netdept, from_hop=l4, at=at + minutes(15))
    db.session.commit()
    return inquiry, l5
