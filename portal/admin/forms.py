from __future__ import annotations

import re
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from portal.auth.forms import strong_password
from portal.inputs import DateField
from portal.units.models import kind_labels

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def email_format(form, field):
    """A plain shape check (wtforms' Email() needs the email_validator package)."""
    if field.data and not EMAIL.match(field.data.strip()):
        raise ValidationError(_l("Invalid email address."))


def username_format(form, field):
    if not USERNAME.match((field.data or "").strip().lower()):
        raise ValidationError(_l("2–63 lowercase letters, digits, dots, dashes or underscores."))


class UserCreateForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), username_format],
                           render_kw={"autocapitalize": "none", "autocomplete": "off"})
    display_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail (optional)"), validators=[Optional(), email_format, Length(max=254)])
    password = PasswordField(_l("Initial password"),
                             validators=[DataRequired(), Length(max=200), strong_password],
                             render_kw={"autocomplete": "new-password"})
    unit_id = SelectField(_l("Unit"), coerce=int, validators=[DataRequired()])
    role = SelectField(_l("Role"), validators=[DataRequired()])


class UserEditForm(FlaskForm):
    display_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=120)])
    email = EmailField(_l("E-mail (optional)"), validators=[Optional(), email_format, Length(max=254)])
    active = BooleanField(_l("Account active (unticking ends all of the user's sessions)"))


class PasswordResetForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200), strong_password],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the new password"),
                            validators=[DataRequired(), EqualTo("password", _l("The two entries differ."))],
                            render_kw={"autocomplete": "new-password"})


class GrantForm(FlaskForm):
    unit_id = SelectField(_l("Unit"), coerce=int, validators=[DataRequired()])
    role = SelectField(_l("Role"), validators=[DataRequired()])


def code_format(form, field):
    if not CODE.match((field.data or "").strip()):
        raise ValidationError(_l("Lowercase letters, digits and dashes, e.g. express-sh-pudong."))


def known_timezone(form, field):
    if field.data and field.data not in available_timezones():
        raise ValidationError(_l("Unknown time zone; use a name such as Asia/Shanghai."))


class UnitForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(), code_format],
                       render_kw={"autocapitalize": "none"})
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(), Length(max=120)])
    name_en = StringField(_l("Name (English)"), validators=[DataRequired(), Length(max=120)])
    kind = SelectField(_l("Kind"), choices=[(k, label) for k, label in kind_labels().items()])
    parent_id = SelectField(_l("Parent unit"), coerce=int)
    timezone = StringField(_l("Time zone (empty: inherit)"), validators=[Optional(), known_timezone])


class SettingForm(FlaskForm):
    value = StringField(_l("New value"), validators=[DataRequired(), Length(max=200)])
    effective_from = DateField(_l("In force from"), validators=[DataRequired()])
    note = StringField(_l("Approval reference (optional)"), validators=[Optional(), Length(max=255)])
