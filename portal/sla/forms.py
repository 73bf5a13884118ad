from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.inputs import DateField
from portal.sla.models import HOLIDAY, WORKDAY


class CalendarDayForm(FlaskForm):
    day = DateField(_l("Day"), validators=[DataRequired()])
    kind = SelectField(_l("Kind"), choices=[(HOLIDAY, _l("Day off (holiday)")),
                                            (WORKDAY, _l("Working day (make-up day)"))],
                       validators=[DataRequired()])
    note = StringField(_l("Note"), validators=[Optional(), Length(max=255)])
