from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from plugins.express import rules
from portal.plugin_api import IntegerField, LocalDateTimeField


class IntakeForm(FlaskForm):
    """EXP-R01: who asks, how to call back, which parcel."""

    waybill = StringField(_l("Waybill number"), validators=[DataRequired(), Length(max=40)],
                          render_kw={"inputmode": "numeric", "autocomplete": "off"})
    inquirer_name = StringField(_l("Inquirer's name"), validators=[DataRequired(), Length(max=80)])
    inquirer_org = StringField(_l("Work unit"), validators=[Optional(), Length(max=120)])
    inquirer_phone = StringField(_l("Callback phone"), validators=[DataRequired(), Length(max=40)],
                                 render_kw={"inputmode": "tel"})
    partner_id = SelectField(_l("Agent-delivered by (EXP-R16)"), coerce=int, validators=[Optional()])
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=4000)], render_kw={"rows": 3})
    # asked when the same waybill was taken here a few minutes ago (express.intake_repeat_minutes)
    confirm_repeat = BooleanField(_l("Open another inquiry about this waybill"))

    def __init__(self, *args, waybill_pattern: str = rules.DEFAULT_WAYBILL_PATTERN, **kwargs):
        super().__init__(*args, **kwargs)
        self.waybill_pattern = waybill_pattern

    def validate_waybill(self, field):
        error = rules.waybill_error(field.data, self.waybill_pattern)
        if error:
            raise ValidationError(str(error))

    def validate_inquirer_phone(self, field):
        error = rules.phone_error(field.data)
        if error:
            raise ValidationError(str(error))


class SignedForm(FlaskForm):
    """EXP-R02: the tracking shows a signature — who signed, when, what the customer was told."""

    signer = StringField(_l("Signed for by"), validators=[DataRequired(), Length(max=80)])
    signed_at = LocalDateTimeField(_l("Signed at"), validators=[DataRequired()])
    answer = TextAreaField(_l("Answer given to the customer"), validators=[DataRequired(), Length(max=2000)],
                           render_kw={"rows": 2})


class ForwardForm(FlaskForm):
    """A forward to the next level: the target is checked by the ladder, not by the choices,
    so that a crafted request reaches the ladder check and is logged (EXP-R14)."""

    from_hop = HiddenField()
    target = SelectField(_l("Send to"), coerce=int, validate_choice=False,
                         validators=[DataRequired(message=_l("Choose where to send the inquiry.")),
                                     NumberRange(min=1, max=rules.MAX_ID,
                                                 message=_l("Choose where to send the inquiry."))])
    message = TextAreaField(_l("Message"), validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})


class HelpForm(FlaskForm):
    """EXP-R11: center CS → its supervisor; supervisor → the regional network manager."""

    kind = HiddenField()
    target = SelectField(_l("Network manager unit"), coerce=int, validate_choice=False,
                         validators=[Optional(), NumberRange(min=1, max=rules.MAX_ID,
                                                             message=_l("Choose where to send the inquiry."))])
    message = TextAreaField(_l("Progress and the difficulty"), validators=[Optional(), Length(max=2000)],
                            render_kw={"rows": 2})


class FactsForm(FlaskForm):
    """EXP-R04 ①, R06: the parcel data a level records and passes on."""

    send_time = StringField(_l("Send time"), validators=[Optional(), Length(max=40)],
                            render_kw={"placeholder": "2026-12-01 14:00"})
    expected_arrival = StringField(_l("Expected arrival"), validators=[Optional(), Length(max=40)])
    appearance = StringField(_l("Appearance"), validators=[Optional(), Length(max=200)])
    packaging = StringField(_l("Packaging"), validators=[Optional(), Length(max=200)])
    pieces = IntegerField(_l("Pieces"), validators=[Optional()], minimum=1, maximum=9999)
    weight = StringField(_l("Weight (kg)"), validators=[Optional(), Length(max=12)],
                         render_kw={"inputmode": "decimal"})
    destination = StringField(_l("Destination"), validators=[Optional(), Length(max=200)])
    recipient = StringField(_l("Recipient name, address, contact"), validators=[Optional(), Length(max=300)])

    def validate_weight(self, field):
        if field.data and rules.parse_weight(field.data) is None:
            raise ValidationError(str(_l("A weight in kg such as 1.5.")))

    def values(self) -> dict[str, str]:
        out = {}
        for name in ("send_time", "expected_arrival", "appearance", "packaging", "pieces", "weight",
                     "destination", "recipient"):
            value = getattr(self, name).data
            if name == "weight" and value:
                value = str(rules.parse_weight(value))
            out[name] = "" if value is None else str(value)
        return out


class CheckForm(FlaskForm):
    step = SelectField(_l("Check"), validators=[DataRequired()], validate_choice=False)
    result = TextAreaField(_l("Result"), validators=[DataRequired(), Length(max=2000)], render_kw={"rows": 2})


class ReplyForm(FlaskForm):
    outcome = RadioField(_l("Reply"), validate_choice=False,
                         validators=[DataRequired(message=_l("Choose found or not found."))])
    text = TextAreaField(_l("What was found, where, what happens next"),
                         validators=[DataRequired(), Length(max=2000)], render_kw={"rows": 2})


class VpForm(FlaskForm):
    """EXP-R08: 网络管理部's director asks the VP in charge to intervene (a record, no forward)."""

    text = TextAreaField(_l("What the VP is asked to do"), validators=[DataRequired(), Length(max=2000)],
                         render_kw={"rows": 2})


class CustomerForm(FlaskForm):
    """EXP-R09: progress (the clock restarts) or the result (the inquiry closes)."""

    kind = RadioField(_l("Tell the customer"), choices=[("progress", _l("Progress")), ("result", _l("Result"))],
                      validators=[DataRequired()])
    text = TextAreaField(_l("What the customer was told"), validators=[DataRequired(), Length(max=2000)],
                         render_kw={"rows": 2})
