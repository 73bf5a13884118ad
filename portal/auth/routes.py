"""Login, logout, own password, language and current-unit switching."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import format_datetime, ngettext, refresh
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select

from portal.audit import record
from portal.auth import sessions, throttle
from portal.auth.access import authenticated, current_unit, public, visible_unit_ids
from portal.auth.forms import LanguageForm, LoginForm, PasswordChangeForm, UnitSwitchForm
from portal.auth.models import User
from portal.auth.passwords import burn_time, hash_password, verify_password
from portal.extensions import db, login_manager
from portal.htmx import redirect_to

bp = Blueprint("auth", __name__)
log = logging.getLogger("portal.security")


@login_manager.user_loader
def load_user(token: str) -> User | None:
    return sessions.load(token)


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the dashboard (no open redirect).

    Browsers drop tabs and newlines inside URLs ("/<TAB>/evil.com" becomes "//evil.com")
    and read a backslash as a slash, so any control character or backslash is refused.
    """
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(c) < 32 or ord(c) == 127 for c in target)
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("core.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(url_for("core.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip().lower()
        user = db.session.scalar(select(User).where(func.lower(User.username) == username))
        # the same replies for every name, known or not: the throttle looks only at the name
        # as typed and the address (portal/auth/throttle.py)
        until = throttle.refused_until(username)
        if until is not None:
            throttle.note_refusal(username, until)
            form.password.errors.append(_throttled(until))
            return render_template("auth/login.html", form=form), 429
        if user is None:
            burn_time(form.password.data)
        if user is None or not user.active or not verify_password(user, form.password.data):
            until = throttle.note_failure(username, user)
            if until is not None:
                form.password.errors.append(_throttled(until))
                return render_template("auth/login.html", form=form), 429
            form.password.errors.append(_("Wrong username or password, or the account is disabled."))
            return render_template("auth/login.html", form=form), 401
        notice = throttle.notice_since_last_login(user)
        session.clear()  # a new session identifier at every login
        sessions.start(user)
        throttle.note_success(username)
        record("auth.login", "user", user.id, actor=user)
        db.session.commit()
        login_user(user)
        if user.locale:
            session["locale"] = user.locale
        if notice is not None:
            flash(_failures_notice(notice), "warning")
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), 400 if form.errors else 200


def _throttled(until) -> str:
    """The throttle message, the time rounded up to the minute it shows (never too early)."""
    shown = until.replace(second=0, microsecond=0)
    if shown < until:
        shown += timedelta(minutes=1)
    return _("Too many failed attempts; try again at %(time)s.", time=format_datetime(shown, "short"))


def _failures_notice(notice: throttle.LoginNotice) -> str:
    """What failed since the last login, in the language and time zone of the page the person
    is about to see: their own language, their unit's zone."""
    refresh()  # the locale and zone were picked before the login; pick them again for the user
    return ngettext(
        "%(num)d failed login attempt since your last login, from address %(address)s at %(time)s.",
        "%(num)d failed login attempts since your last login; the last from address %(address)s "
        "at %(time)s.",
        notice.failures,
        address=notice.last_addr or "?",
        time=format_datetime(notice.last_at, "short"),
    )


@bp.route("/logout", methods=["POST"])
@authenticated
def logout():
    sessions.end(current_user.session_token)
    record("auth.logout", "user", current_user.id)
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect_to(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@authenticated
def change_password():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if not verify_password(current_user, form.current.data):
            form.current.errors.append(_("This is not your current password."))
        else:
            current_user.password_hash = hash_password(form.new.data)
            sessions.end_all(current_user, "password_changed")
            record("user.password_changed", "user", current_user.id)
            db.session.commit()
            logout_user()
            session.clear()
            flash(_("Password changed. Please log in with the new password."), "success")
            return redirect_to(url_for("auth.login"))
    return render_template("auth/password.html", form=form), 400 if form.errors else 200


@bp.route("/language", methods=["POST"])
@public
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.language.data
        if current_user.is_authenticated:
            before = current_user.locale
            current_user.locale = form.language.data
            record("user.locale", "user", current_user.id,
                   before={"locale": before}, after={"locale": form.language.data})
            db.session.commit()
    return redirect_to(_safe_next(request.form.get("next")))


@bp.route("/unit", methods=["POST"])
@authenticated
def switch_unit():
    form = UnitSwitchForm()
    form.unit_id.choices = [(i, "") for i in visible_unit_ids(current_user)]
    if form.validate_on_submit():
        session["unit_id"] = form.unit_id.data
        flash(_("Switched to %(unit)s.", unit=_unit_name(form.unit_id.data)), "info")
    else:
        flash(_("You have no role in that unit."), "error")
    return redirect_to(url_for("core.dashboard"))


def _unit_name(unit_id: int) -> str:
    from portal.units.models import Unit

    unit = db.session.get(Unit, unit_id)
    return unit.name if unit else ""


__all__ = ["bp", "current_unit"]
