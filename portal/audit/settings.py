"""The per-unit settings of the audit package (CORE-09 retention)."""

from __future__ import annotations

from portal.plugin_api import SettingSpec


def audit_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            "core.retention_years_duty", "int", 3, "值班记录保存年限", "Keep duty records (years)",
            rule="DUTY-07", minimum=1, maximum=100,
            help_zh="自每月底归档起计算：2026-03-05 的记录须保存至 2029-03-31 24:00。",
            help_en="Counted from the month-end archive: a record of 2026-03-05 is kept until "
                    "2029-03-31 24:00.",
        ),
        SettingSpec(
            "core.retention_years_audit", "int", 3, "审计记录保存年限", "Keep the audit trail (years)",
            rule="CORE-09", minimum=1, maximum=100,
            help_zh="自每月底归档起计算；清理时以各单位中最长的年限为准。",
            help_en="Counted from the month-end archive; a purge applies the longest value of any unit.",
        ),
    ]
