"""The audit trail (CORE-08), sealed records (CORE-07) and retention (CORE-09).

``record()`` adds an entry to the current database session, so it commits or
rolls back together with the change it describes; the session's flush chains it
(``seq``, ``prev_hash``, ``hash``; see ``portal.audit.chain``).
"""

from __future__ import annotations

from portal.audit import seals  # noqa: F401 - seal entries for every sealed record
from portal.audit.models import AuditEntry, record
from portal.audit.sealed import AppendOnlyError, Sealed, SealedRecordError, seal

__all__ = ["AppendOnlyError", "AuditEntry", "Sealed", "SealedRecordError", "record", "seal"]
