from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.plugin_api import DateField


class NoticeForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    body = TextAreaField(_l("Text"), validators=[DataRequired(), Length(max=10000)],
                         render_kw={"rows": 8})
    pinned = BooleanField(_l("Pin to the top"))
    visible_until = DateField(_l("Visible until (empty: the unit's default)"), validators=[Optional()])
