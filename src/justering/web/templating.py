"""The pages' templates: Jinja2 with autoescaping, loaded from the installed
package (``justering/web/templates``).

Python hands templates values; the templates make the markup, and every value is
escaped unless a template says otherwise (none does with user data). The filters
give a person Swedish local time:

- ``{{ moment|time }}``: ``<time datetime="2014-08-19T14:30+02:00">2014-08-19
  14:30</time>`` for an aware datetime, ``<time datetime="2014-08-19">2014-08-19</time>``
  for a date;
- ``{{ moment|minute }}``: the same text without the element;
- ``{{ moment|second }}``: ``2014-08-19 14:30:05 CEST``, to the second, with the zone;
- ``{{ value|role }}``: a stored role's Swedish name (``ordförande``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from justering.model.calendar import local_minute, local_second, local_time
from justering.model.roles import role_name

__all__ = [
    "TEMPLATES",
    "render",
    "swedish_minute",
    "time_element",
]

_TIME = Markup('<time datetime="{0}">{1}</time>')


def swedish_minute(moment: dt.datetime) -> str:
    """``2014-08-19 14:30``: an aware ``moment`` in Swedish local time, to the minute."""
    return local_minute(local_time(moment))


def time_element(moment: dt.date | dt.datetime) -> Markup:
    """A ``<time>`` element: a date, or an aware datetime in Swedish local time to
    the minute (its ``datetime`` attribute with the UTC offset). The values are
    escaped by :meth:`Markup.format`; nothing else is put into the markup."""
    if isinstance(moment, dt.datetime):
        local = local_time(moment)
        return _TIME.format(local.isoformat(timespec="minutes"), local_minute(local))
    return _TIME.format(moment.isoformat(), moment.isoformat())


TEMPLATES = Environment(
    loader=PackageLoader("justering.web", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
"""Every page's template; autoescaping always on, and a name a template uses that
its caller did not pass is an error, not an empty string."""
TEMPLATES.filters["time"] = time_element
TEMPLATES.filters["minute"] = swedish_minute
TEMPLATES.filters["role"] = role_name
TEMPLATES.filters["second"] = local_second


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a path under ``templates/``) filled with ``context``."""
    return TEMPLATES.get_template(template).render(**context)
