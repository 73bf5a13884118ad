"""The deadline engine's per-unit settings (declared through the core plugin)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.plugin_api import SettingError, SettingSpec
from portal.sla.hours import DEFAULT_WORK_HOURS, WorkHoursError, parse_work_hours


def _check_work_hours(text: str) -> None:
    try:
        parse_work_hours(text)
    except WorkHoursError as exc:
        raise SettingError(_l("Working hours: %(problem)s", problem=str(exc))) from exc


def sla_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            "core.sla_warning_percent", "int", 80, "超时预警（占时限的百分比）",
            "Warn at (percent of the time allowed)", minimum=0, maximum=99,
            help_zh="到达时限的该百分比时提醒负责人；0 = 不预警。",
            help_en="The owner is warned when this share of the time has passed; 0 = no warning.",
        ),
        SettingSpec(
            "core.work_hours", "text", DEFAULT_WORK_HOURS, "工作时间", "Working hours",
            help_zh="按工作时间计算的时限使用。格式：Mon-Fri 09:00-12:00,13:00-18:00; Sat 09:00-12:00"
                    "（未列出的日子休息；调休上班日按周一的时间）。",
            help_en="Used by deadlines counted in working time. Format: "
                    "Mon-Fri 09:00-12:00,13:00-18:00; Sat 09:00-12:00 (days not named are off; "
                    "make-up working days use Monday's hours).",
            validate=_check_work_hours,
        ),
    ]
