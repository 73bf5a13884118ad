from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

from portal.auth.passwords import MIN_LENGTH


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


def strong_password(form, field):
    value = field.data or ""
    if len(value) < MIN_LENGTH:
        raise ValidationError(_l("At least %(n)d characters.", n=MIN_LENGTH))
    if value.isdigit() or value.isalpha():
        raise ValidationError(_l("Mix letters with digits or symbols."))


class PasswordChangeForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()],
                            render_kw={"autocomplete": "current-password"})
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200), strong_password],
                        render_kw={"autocomplete": "new-password"})
    confirm = PasswordField(_l("Repeat the new password"),
                            validators=[DataRequired(), EqualTo("new", _l("The two entries differ."))],
                            render_kw={"autocomplete": "new-password"})


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[("zh_Hans", "中文"), ("en", "English")])


class UnitSwitchForm(FlaskForm):
    unit_id = SelectField(_l("Unit"), coerce=int, choices=[])
