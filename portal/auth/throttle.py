"""Login throttling: growing delays per name and address, never an account lock.

Kept in the database (``login_attempts``), so it holds across gunicorn workers and hosts.
Only attempts that checked a password are stored; an attempt refused by a delay checks
nothing, is not stored and does not lengthen any delay.

**Three keys.**  Every failed login counts against:

* the **name from that address** — one person, or one attacker, at one machine
  (``PORTAL_LOGIN_MAX_FAILURES``, 10 failures);
* the **address**, whatever the name — one machine trying many names, password spraying
  (``PORTAL_LOGIN_ADDRESS_MAX_FAILURES``, 30: higher, since a station's staff often share
  one office address);
* the **name**, from every address — many machines guessing one account
  (``PORTAL_LOGIN_MAX_FAILURES``, 10).

**Growing delays.**  Once a key holds that many failures, the next attempt it covers is
refused until ``PORTAL_LOGIN_DELAY`` (1 minute) after the key's last failure, and every
further failure doubles the delay (1, 2, 4, 8 … minutes), up to ``PORTAL_LOGIN_MAX_DELAY``
(60 minutes).  The refusal comes before the password is looked at, so the right password
waits too, and the reply says when to try again (429).

**Nobody can lock the real user out.**  Failures from other addresses never touch the keys
of the user's own address.  The per-name key alone is shared with strangers, so it is held
down twice: its delay is capped at ``PORTAL_LOGIN_ACCOUNT_MAX_DELAY`` (5 minutes), and it does
not apply at all at an address the name logged in from within ``PORTAL_LOGIN_KNOWN_ADDRESS``
(90 days).  So at the office or at home, where the user has logged in before and has made no
recent mistakes, the right password gets in at once however many strangers fail against the
name; at a new address the user waits at most 5 minutes; and a botnet, whose addresses never
logged in as that name, is slowed to one guess per 5 minutes for the whole account, on top of
each address's own delays.

**Forgetting.**  A failure stops counting once it is older than ``PORTAL_LOGIN_WINDOW``
(24 hours); when the same name later logs in from the same address (a person's own typos are
forgiven, ``cleared_at`` is set); or when an admin clears the account or the address at
*Users → Failed logins* (``/admin/logins``, audited).  At the next successful login the
person is told how many attempts failed since their last login, and the last one's address
and time.

**Unknown names** are counted exactly like real ones (by the name as typed), and the replies
— message, status and timing (a dummy hash is verified for an unknown name) — do not tell
them apart; a throttle message names neither the key nor the account.

**The client address** is ``request.remote_addr``.  The portal does not read
``X-Forwarded-For`` itself: behind a reverse proxy, wrap the app in Werkzeug's ``ProxyFix``
(README, *Running in production*), or every client has the proxy's address — the address key
then covers everybody and the name-and-address key becomes one per name.  A login that
arrives with ``X-Forwarded-For`` but without ``ProxyFix`` logs a warning once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, request
from sqlalchemy import func, select, update

from portal.audit import record
from portal.auth.models import LoginAttempt, User
from portal.db_types import utcnow
from portal.extensions import db

log = logging.getLogger("portal.security")

_proxy_warned = False


@dataclass
class Key:
    """The unforgiven failures of one key and the delay they set."""

    failures: int = 0
    last_at: datetime | None = None
    last_addr: str | None = None
    until: datetime | None = None  # attempts covered by this key are refused until then

    def delayed(self, now: datetime | None = None) -> bool:
        return self.until is not None and self.until > (now or utcnow())


@dataclass
class AccountState(Key):
    """A name's failures from every address, with the name-and-address keys under it."""

    username: str = ""
    user: User | None = None
    addresses: list[tuple[str | None, Key]] = field(default_factory=list)


@dataclass
class AddressState(Key):
    address: str | None = None
    names: list[str] = field(default_factory=list)


@dataclass
class LoginNotice:
    """What failed since the person's previous login."""

    failures: int
    last_at: datetime
    last_addr: str | None


# ---- the rule -----------------------------------------------------------------------------


def delay_for(failures: int, threshold: int, cap: timedelta) -> timedelta | None:
    """The delay after ``failures`` unforgiven failures: none below ``threshold``, then the base
    delay doubling with each further failure, never above ``cap``."""
    if failures < threshold:
        return None
    base = current_app.config["PORTAL_LOGIN_DELAY"]
    doublings = min(failures - threshold, 32)  # 2**32 minutes is far past any cap
    return min(base * 2 ** doublings, cap)


def _until(key: Key, threshold: int, cap: timedelta) -> Key:
    delay = delay_for(key.failures, threshold, cap)
    key.until = key.last_at + delay if delay is not None and key.last_at is not None else None
    return key


def _pair_limits() -> tuple[int, timedelta]:
    cfg = current_app.config
    return cfg["PORTAL_LOGIN_MAX_FAILURES"], cfg["PORTAL_LOGIN_MAX_DELAY"]


def _address_limits() -> tuple[int, timedelta]:
    cfg = current_app.config
    return cfg["PORTAL_LOGIN_ADDRESS_MAX_FAILURES"], cfg["PORTAL_LOGIN_MAX_DELAY"]


def _account_limits() -> tuple[int, timedelta]:
    cfg = current_app.config
    return cfg["PORTAL_LOGIN_MAX_FAILURES"], min(cfg["PORTAL_LOGIN_ACCOUNT_MAX_DELAY"],
                                                 cfg["PORTAL_LOGIN_MAX_DELAY"])


# ---- queries ------------------------------------------------------------------------------


def _addr_is(address: str | None):
    column = LoginAttempt.remote_addr
    return column.is_(None) if address is None else column == address


def _unforgiven(*where):
    """Failures still counting: within the window, not cleared by a login or an admin."""
    since = utcnow() - current_app.config["PORTAL_LOGIN_WINDOW"]
    return (LoginAttempt.success.is_(False), LoginAttempt.cleared_at.is_(None),
            LoginAttempt.at > since, *where)


def _key(*where) -> Key:
    failures, last_at = db.session.execute(
        select(func.count(LoginAttempt.id), func.max(LoginAttempt.at)).where(*_unforgiven(*where))
    ).one()
    return Key(failures=failures, last_at=last_at)


def known_address(username: str, address: str | None) -> bool:
    """Whether ``username`` logged in successfully from ``address`` within the known period."""
    since = utcnow() - current_app.config["PORTAL_LOGIN_KNOWN_ADDRESS"]
    return db.session.scalar(
        select(LoginAttempt.id).where(
            LoginAttempt.username == username, _addr_is(address),
            LoginAttempt.success.is_(True), LoginAttempt.at > since,
        ).limit(1)
    ) is not None


def keys_for(username: str, address: str | None) -> dict[str, Key]:
    """The keys an attempt of ``username`` from ``address`` falls under, with their delays.

    The per-name key is left out at an address the name is known to log in from."""
    name = LoginAttempt.username == username
    keys = {
        "name+address": _until(_key(name, _addr_is(address)), *_pair_limits()),
        "address": _until(_key(_addr_is(address)), *_address_limits()),
    }
    if not known_address(username, address):
        keys["name"] = _until(_key(name), *_account_limits())
    return keys


def refused_until(username: str) -> datetime | None:
    """Until when an attempt of ``username`` from this request's address is refused, or None."""
    now = utcnow()
    ends = [k.until for k in keys_for(username, _client_address()).values() if k.delayed(now)]
    return max(ends, default=None)


def _client_address() -> str | None:
    global _proxy_warned
    if (not _proxy_warned and request.headers.get("X-Forwarded-For")
            and "werkzeug.proxy_fix.orig" not in request.environ):
        _proxy_warned = True
        log.warning(
            "login from %s carries X-Forwarded-For, but the portal reads only the connection's "
            "address: behind a reverse proxy wrap the app in ProxyFix (README, Running in "
            "production), or login throttling treats every client as the proxy",
            request.remote_addr)
    return request.remote_addr


# ---- recording ----------------------------------------------------------------------------


def note_failure(username: str, user: User | None) -> datetime | None:
    """Record a failed login; returns until when the next attempt is refused, or None.

    A key that reaches its threshold with this failure is logged and audited
    (``auth.throttled``); every failure is audited as ``auth.login_failed``."""
    address = _client_address()
    db.session.add(LoginAttempt(username=username, success=False, remote_addr=address))
    log.warning("login failed: username=%s addr=%s", username, address)
    record("auth.login_failed", "user", user.id if user else None, actor=user,
           after={"username": username})
    db.session.flush()
    keys = keys_for(username, address)
    thresholds = {"name+address": _pair_limits()[0], "address": _address_limits()[0],
                  "name": _account_limits()[0]}
    for scope, key in keys.items():
        if key.failures == thresholds[scope]:
            log.warning("login throttled: key=%s username=%s addr=%s failures=%d until=%s",
                        scope, username, address, key.failures, key.until.isoformat())
            record("auth.throttled", "user", user.id if user else None, actor=user,
                   after={"key": scope, "username": username, "remote_addr": address,
                          "failures": key.failures, "until": key.until})
    db.session.commit()
    now = utcnow()
    return max((k.until for k in keys.values() if k.delayed(now)), default=None)


def note_refusal(username: str, until: datetime) -> None:
    """A throttled attempt: logged, not stored (it checked no password)."""
    log.info("login refused by throttle: username=%s addr=%s until=%s",
             username, request.remote_addr, until.isoformat())


def notice_since_last_login(user: User) -> LoginNotice | None:
    """Failed attempts against ``user``'s name since their previous successful login (or since
    the account was created), whatever their address and whether or not cleared since."""
    name = user.username.lower()
    since = db.session.scalar(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.username == name,
                                                LoginAttempt.success.is_(True))
    ) or user.created_at
    where = (LoginAttempt.username == name, LoginAttempt.success.is_(False),
             LoginAttempt.at > since)
    failures = db.session.scalar(select(func.count(LoginAttempt.id)).where(*where))
    if not failures:
        return None
    last = db.session.scalar(select(LoginAttempt).where(*where)
                             .order_by(LoginAttempt.at.desc(), LoginAttempt.id.desc()).limit(1))
    return LoginNotice(failures=failures, last_at=last.at, last_addr=last.remote_addr)


def note_success(username: str) -> None:
    """Record a successful login; the name's failures from this address stop counting."""
    address = request.remote_addr
    now = utcnow()
    db.session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.username == username, _addr_is(address),
               LoginAttempt.success.is_(False), LoginAttempt.cleared_at.is_(None))
        .values(cleared_at=now)
    )
    db.session.add(LoginAttempt(username=username, success=True, remote_addr=address, at=now))


# ---- what admins see and clear ------------------------------------------------------------


def _grouped(*where) -> list[tuple[str, str | None, int, datetime]]:
    """Unforgiven failures per (name, address): name, address, count, last time."""
    return db.session.execute(
        select(LoginAttempt.username, LoginAttempt.remote_addr, func.count(LoginAttempt.id),
               func.max(LoginAttempt.at))
        .where(*_unforgiven(*where))
        .group_by(LoginAttempt.username, LoginAttempt.remote_addr)
    ).all()


def accounts(users: Collection[User]) -> list[AccountState]:
    """The accounts among ``users`` with failures still counting, latest first."""
    by_name = {u.username.lower(): u for u in users}
    if not by_name:
        return []
    states: dict[str, AccountState] = {}
    for name, address, count, last_at in _grouped(LoginAttempt.username.in_(by_name)):
        state = states.setdefault(name, AccountState(username=name, user=by_name[name]))
        pair = _until(Key(failures=count, last_at=last_at, last_addr=address), *_pair_limits())
        state.addresses.append((address, pair))
        state.failures += count
        if state.last_at is None or last_at > state.last_at:
            state.last_at, state.last_addr = last_at, address
    for state in states.values():
        _until(state, *_account_limits())
        state.addresses.sort(key=lambda item: item[1].last_at, reverse=True)
    return sorted(states.values(), key=lambda s: s.last_at, reverse=True)


def addresses(limit: int = 200) -> tuple[list[AddressState], int]:
    """Addresses with failures still counting (any name, known or not), latest first, at most
    ``limit`` of them; and how many there are in all."""
    states: dict[str | None, AddressState] = {}
    for name, address, count, last_at in _grouped():
        state = states.setdefault(address, AddressState(address=address))
        state.names.append(name)
        state.failures += count
        if state.last_at is None or last_at > state.last_at:
            state.last_at = last_at
    for state in states.values():
        _until(state, *_address_limits())
        state.names.sort()
    rows = sorted(states.values(), key=lambda s: s.last_at, reverse=True)
    return rows[:limit], len(rows)


def address_state(address: str | None) -> AddressState:
    key = _key(_addr_is(address))
    return _until(AddressState(failures=key.failures, last_at=key.last_at, address=address),
                  *_address_limits())


def clear_account(username: str) -> int:
    """Stop counting the name's failures (from every address).  Returns how many were cleared."""
    return _clear(LoginAttempt.username == username.lower())


def clear_address(address: str | None) -> int:
    """Stop counting the address's failures (for every name).  Returns how many were cleared."""
    return _clear(_addr_is(address))


def _clear(*where) -> int:
    result = db.session.execute(
        update(LoginAttempt)
        .where(LoginAttempt.success.is_(False), LoginAttempt.cleared_at.is_(None), *where)
        .values(cleared_at=utcnow())
    )
    return result.rowcount or 0
