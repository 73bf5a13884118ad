"""The audit trail (CORE-08): who did what, when, to which object, before and after.

``record()`` adds an entry to the current database session, so it commits or
rolls back together with the change it describes.
"""

from __future__ import annotations

from portal.audit.models import AuditEntry, record

__all__ = ["AuditEntry", "record"]
