"""All core models in one import, for Alembic and for ``create_app``'s checks."""

from portal.audit.models import AuditEntry
from portal.auth.models import LoginAttempt, Membership, User, UserSession
from portal.settings.models import SettingValue
from portal.units.models import Unit, UnitPlugin

__all__ = [
    "AuditEntry", "LoginAttempt", "Membership", "SettingValue", "Unit", "UnitPlugin", "User",
    "UserSession",
]
