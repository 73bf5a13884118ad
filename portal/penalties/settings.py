"""The penalty ledger's per-unit settings (declared through the core plugin, CORE-10)."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l

from portal.penalties.rules import DEDUCTION_MODES, MAX_AMOUNT
from portal.plugin_api import PenaltyRule, SettingError, SettingSpec


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


def amount_setting_keys(owner: str, rule: PenaltyRule) -> tuple[str, str] | None:
    """The keys of a rule's amount settings: (minimum, maximum), the same key when fixed."""
    if rule.amount_min is None:
        return None
    if rule.is_range:
        return f"{owner}.fine.{rule.id}.min", f"{owner}.fine.{rule.id}.max"
    key = f"{owner}.fine.{rule.id}"
    return key, key


def rule_amount_settings(owner: str, rule: PenaltyRule) -> list[SettingSpec]:
    """Every amount a regulation sets is a per-unit setting with the regulation's value (CORE-10).

    Registered for the plugin that owns the rule, so its settings page lists them.
    """
    keys = amount_setting_keys(owner, rule)
    if keys is None:
        return []
    common = {"type": "decimal", "rule": rule.id, "minimum": Decimal("0"), "maximum": MAX_AMOUNT}
    if not rule.is_range:
        return [SettingSpec(keys[0], default=rule.amount_min, label_zh=f"{rule.id} {rule.title_zh}：罚款金额（元）",
                            label_en=f"{rule.id} {rule.title_en}: fine (yuan)", **common)]
    return [
        SettingSpec(keys[0], default=rule.amount_min, label_zh=f"{rule.id} {rule.title_zh}：罚款下限（元）",
                    label_en=f"{rule.id} {rule.title_en}: lowest fine (yuan)", **common),
        SettingSpec(keys[1], default=rule.amount_max, label_zh=f"{rule.id} {rule.title_zh}：罚款上限（元）",
                    label_en=f"{rule.id} {rule.title_en}: highest fine (yuan)", **common),
    ]
