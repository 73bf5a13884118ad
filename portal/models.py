"""All core models in one import, for Alembic and for ``create_app``'s checks."""

from portal.audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditPurgePermit
from portal.auth.models import LoginAttempt, Membership, User, UserSession
from portal.penalties.models import InboxMessage, PenaltyAppeal, PenaltyDecision, PenaltyNotice
from portal.settings.models import SettingValue
from portal.sla.models import CalendarDay, Deadline
from portal.submissions import FormSubmission
from portal.units.models import Unit, UnitPlugin

__all__ = [
    "AuditCheckpoint", "AuditEntry", "AuditHead", "AuditPurgePermit",
    "LoginAttempt", "Membership", "SettingValue", "CalendarDay", "Deadline", "Unit", "UnitPlugin", "User",
    "UserSession", "FormSubmission", "InboxMessage", "PenaltyAppeal", "PenaltyDecision", "PenaltyNotice",
]
