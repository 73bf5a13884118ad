"""The penalty ledger's per-unit settings (declared through the core plugin, CORE-10)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal.penalties.rules import DEDUCTION_MODES
from portal.plugin_api import SettingError, SettingSpec


def _check_deduction_mode(value: str) -> None:
    if value not in DEDUCTION_MODES:
        raise SettingError(_l("Either 'final' or 'published'."))


def penalty_settings() -> list[SettingSpec]:
    return [
        SettingSpec(
            "core.appeal_days", "int", 2, "申诉期限（天）", "Appeal period (days)", rule="CORE-04",
            minimum=0, maximum=60,
            help_zh="公布之日不计，至第N个自然日23:59:59（单位时区）止，逾期不受理。",
            help_en="Calendar days after the day of publication; appeals are accepted until "
                    "23:59:59 local time of the last day.",
        ),
        SettingSpec(
            "core.deduction_month", "text", "final", "扣款月份", "Deduction month", rule="CORE-05",
            help_zh="final = 处罚生效（申诉期满或申诉决定）的月份；published = 公布的月份"
                    "（申诉改判后在下期工资中退还）。",
            help_en="final = the month the penalty becomes final (appeal period over or appeal "
                    "decided); published = the month of publication (a later reduction is "
                    "refunded on the next statement).",
            validate=_check_deduction_mode,
        ),
        SettingSpec(
            "core.repeat_reset_months", "int", 0, "重复违规计数周期（月）",
            "Repeat offences counted over (months)", rule="CORE-06", minimum=0, maximum=240,
            help_zh="0 = 累计，永不清零。", help_en="0 = cumulative, never reset.",
        ),
    ]
