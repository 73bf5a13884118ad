"""Per-unit, effective-dated regulation settings (CORE-10).

Each plugin declares its settings (``SettingSpec``) with the regulation's value
as default.  An admin changes a value for a unit with an effective date — by
default the day after approval — and the history is kept: ``value()`` answers
with the value in force at a given instant, in the unit's zone, looking up the
unit tree (a company-wide value applies to every station that has none).
"""
