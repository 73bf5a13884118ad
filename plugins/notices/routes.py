"""Routes of the notice board, mounted at /notices."""

from __future__ import annotations

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from plugins.notices import rules
from plugins.notices.forms import NoticeForm
from plugins.notices.models import Notice, NoticeRead
from portal.audit import record
from portal.auth.access import can, current_unit, permission_required, scope_ids
from portal.db_types import utcnow
from portal.extensions import db
from portal.htmx import redirect_to, render_page
from portal.settings import models as settings

bp = Blueprint("notices", __name__, url_prefix="/notices", template_folder="templates")


def _reachable_unit_ids() -> set[int]:
    """Notices of the current unit and its ancestors (posted for everyone below); those who
    post notices also oversee the notices of the sub-units."""
    unit = current_unit()
    ids = {u.id for u in unit.lineage()}
    if can(current_user, "notices.post", unit):
        ids |= scope_ids()
    return ids


def _current_query(include_ended: bool = False):
    unit = current_unit()
    today = settings.local_date(unit, utcnow())
    query = select(Notice).where(Notice.unit_id.in_(_reachable_unit_ids()))
    if not include_ended:
        query = query.where(Notice.withdrawn_at.is_(None), Notice.visible_until >= today)
    return query.order_by(Notice.pinned.desc(), Notice.published_at.desc())


def _read_ids(notice_ids: list[int]) -> set[int]:
    if not notice_ids:
        return set()
    return set(db.session.scalars(select(NoticeRead.notice_id).where(
        NoticeRead.user_id == current_user.id, NoticeRead.notice_id.in_(notice_ids))))


@bp.route("/")
@permission_required("notices.read")
def index():
    include_ended = request.args.get("ended") == "1"
    notices = db.session.scalars(_current_query(include_ended)).all()
    return render_page("notices/index.html", "notices/_list.html", notices=notices,
                       read=_read_ids([n.id for n in notices]), include_ended=include_ended,
                       today=settings.local_date(current_unit(), utcnow()))


@bp.route("/panel")
@permission_required("notices.read")
def panel():
    notices = db.session.scalars(_current_query().limit(5)).all()
    read = _read_ids([n.id for n in notices])
    return render_template("notices/_panel.html", notices=notices, read=read)


def _notice_or_404(notice_id: int) -> Notice:
    notice = db.session.scalar(select(Notice).where(
        Notice.id == notice_id, Notice.unit_id.in_(_reachable_unit_ids())))
    if notice is None:
        abort(404)
    return notice


def _detail_context(notice: Notice) -> dict:
    readers = None
    if can(current_user, "notices.post", notice.unit) or notice.author_id == current_user.id:
        readers = db.session.scalar(select(func.count()).where(NoticeRead.notice_id == notice.id))
    return {"notice": notice, "is_read": notice.id in _read_ids([notice.id]), "readers": readers,
            "may_withdraw": _may_withdraw(notice)}


def _may_withdraw(notice: Notice) -> bool:
    return notice.withdrawn_at is None and notice.unit_id in scope_ids() and (
        notice.author_id == current_user.id or can(current_user, "notices.post", notice.unit))


@bp.route("/<int:notice_id>")
@permission_required("notices.read")
def detail(notice_id: int):
    return render_template("notices/detail.html", **_detail_context(_notice_or_404(notice_id)))


@bp.route("/<int:notice_id>/read", methods=["POST"])
@permission_required("notices.read")
def acknowledge(notice_id: int):
    notice = _notice_or_404(notice_id)
    if notice.id not in _read_ids([notice.id]):
        db.session.add(NoticeRead(notice_id=notice.id, user_id=current_user.id))
        record("notices.read", "notice", notice.id, unit_id=notice.unit_id)
        db.session.commit()
    return render_page("notices/detail.html", "notices/_ack.html", **_detail_context(notice))


@bp.route("/new", methods=["GET", "POST"])
@permission_required("notices.post")
def new():
    unit = current_unit()
    form = NoticeForm()
    today = settings.local_date(unit, utcnow())
    if form.validate_on_submit():
        if rules.end_date_error(today, form.visible_until.data):
            form.visible_until.errors.append(_("The end date cannot be before today."))
        else:
            end = form.visible_until.data or rules.default_end(
                today, settings.value(unit, "notices.visible_days"))
            notice = Notice(unit_id=unit.id, title=form.title.data.strip(), body=form.body.data.strip(),
                            pinned=form.pinned.data, visible_until=end, author_id=current_user.id)
            db.session.add(notice)
            db.session.flush()
            record("notices.posted", "notice", notice.id, unit_id=unit.id,
                   after={"title": notice.title, "pinned": notice.pinned, "visible_until": end})
            db.session.commit()
            flash(_("Notice published."), "success")
            return redirect_to(url_for("notices.detail", notice_id=notice.id))
    return render_template("notices/new.html", form=form,
                           default_days=settings.value(unit, "notices.visible_days")), (
        400 if form.errors else 200)


@bp.route("/<int:notice_id>/withdraw", methods=["POST"])
@permission_required("notices.read")
def withdraw(notice_id: int):
    notice = _notice_or_404(notice_id)
    if not _may_withdraw(notice):
        abort(403)
    notice.withdrawn_at = utcnow()
    notice.withdrawn_by_id = current_user.id
    record("notices.withdrawn", "notice", notice.id, unit_id=notice.unit_id,
           before={"withdrawn_at": None}, after={"withdrawn_at": notice.withdrawn_at})
    db.session.commit()
    flash(_("Notice withdrawn."), "success")
    return redirect_to(url_for("notices.index"))
