"""Demo notices (idempotent)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from plugins.notices.models import Notice
from portal.db_types import utcnow
from portal.settings.models import local_date

DEMO = [
    ("demo", "admin", True, "客服规章已上线", "各单位的客服规章已录入门户：期限、交接与罚款均按规章自动计时、留痕。请各位同事登录后查看本单位的规章参数。"),
    ("express-sh", "express.supervisor", False, "本周查询件处理提醒", "客户来电后30分钟内必须回复结果或进度；目的站无论查到与否都要立即回复。"),
    ("property-desk", "duty.supervisor", False, "交接班记录要求", "交接班记录须写明设备情况、疑难问题和人员调班，双方签字后方可离岗。"),
]


def seed(session, units, users):
    for code, author, pinned, title, body in DEMO:
        if code not in units or author not in users:
            continue
        unit = units[code]
        exists = session.scalar(select(Notice.id).where(Notice.unit_id == unit.id, Notice.title == title))
        if exists:
            continue
        session.add(Notice(unit_id=unit.id, title=title, body=body, pinned=pinned,
                           author_id=users[author].id,
                           visible_until=local_date(unit, utcnow()) + timedelta(days=365)))
