"""Forms of the penalty ledger.  Amount rules are checked by ``portal.penalties.rules``."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.inputs import LocalDateTimeField
from portal.penalties import rules as R


class DraftForm(FlaskForm):
    user_id = SelectField(_l("Person"), coerce=int, validators=[DataRequired()])
    rule_id = SelectField(_l("Rule"), validators=[DataRequired()])
    amount = StringField(_l("Amount (yuan)"), validators=[Optional(), Length(max=20)],
                         render_kw={"inputmode": "decimal"})
    occurred_at = LocalDateTimeField(_l("When it happened (local time)"), validators=[DataRequired()])
    evidence = TextAreaField(_l("Evidence"), validators=[DataRequired(), Length(max=10000)],
                             render_kw={"rows": 6})


class PublishForm(FlaskForm):
    amount = StringField(_l("Amount (yuan)"), validators=[Length(max=20)],
                         render_kw={"inputmode": "decimal"})


class DiscardForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), validators=[Length(max=2000)], render_kw={"rows": 2})


class AppealForm(FlaskForm):
    text = TextAreaField(_l("Why do you appeal?"), validators=[Length(max=5000)],
                         render_kw={"rows": 4})


class DecisionForm(FlaskForm):
    outcome = RadioField(_l("Decision"), choices=[
        (R.UPHELD, _l("Upheld")), (R.REDUCED, _l("Reduced")), (R.WITHDRAWN, _l("Withdrawn"))],
        validate_choice=False)
    amount = StringField(_l("Reduced amount (yuan)"), validators=[Length(max=20)],
                         render_kw={"inputmode": "decimal"})
    reason = TextAreaField(_l("Reason"), validators=[Length(max=5000)], render_kw={"rows": 3})
