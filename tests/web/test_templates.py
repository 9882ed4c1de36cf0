"""The pages' templates: shipped in the package, all reachable, and the filters
that give a person Swedish local time."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from setuptools.dist import Distribution

from justering.web.templating import TEMPLATES, render, swedish_minute, time_element

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "justering" / "web"
REFERENCE = re.compile(r'{%-?\s*(?:extends|from|import|include)\s+"([^"]+)"')


def _walk(folder: Traversable, prefix: str = "") -> dict[str, str]:
    """Every ``.html`` file under ``folder``: name (as the loader knows it) -> text."""
    found: dict[str, str] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".html"):
            found[f"{prefix}{entry.name}"] = entry.read_text("utf-8")
    return found


@pytest.fixture(scope="module")
def packaged() -> dict[str, str]:
    """The templates as the installed package holds them (importlib.resources)."""
    found = _walk(resources.files("justering.web").joinpath("templates"))
    assert "base.html" in found
    return found


def test_setuptools_ships_every_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``[tool.setuptools.package-data]`` makes setuptools put in a wheel holds
    every template (an editable install reads the source, so only this tells)."""
    monkeypatch.chdir(ROOT)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    distribution = Distribution(
        {
            "name": "justering",
            "packages": ["justering.web"],
            "package_dir": {"": "src"},
            "package_data": config["tool"]["setuptools"]["package-data"],
        }
    )
    build = distribution.get_command_obj("build_py")
    build.ensure_finalized()
    [(package, _, _, shipped)] = build.data_files
    assert package == "justering.web"
    on_disk = {
        path.relative_to(WEB).as_posix()
        for path in (WEB / "templates").rglob("*")
        if path.is_file()
    }
    assert on_disk, "no templates found"
    assert on_disk == set(shipped)


def test_every_template_loads_from_the_package(packaged: dict[str, str]) -> None:
    assert set(packaged) == set(TEMPLATES.list_templates())
    for name in packaged:
        template = TEMPLATES.get_template(name)
        assert template.filename is not None
        assert Path(template.filename).read_text("utf-8") == packaged[name]


def test_every_template_is_used_and_every_name_used_exists(packaged: dict[str, str]) -> None:
    """The code names pages; pages name their layouts and macros; nothing else is there."""
    by_code = {
        name
        for module in WEB.glob("*.py")
        for name in re.findall(r'"([\w/]+\.html)"', module.read_text("utf-8"))
    }
    by_templates = {name for text in packaged.values() for name in REFERENCE.findall(text)}
    assert by_code, "no template named in src/justering/web"
    assert by_code | by_templates == set(packaged)


def test_no_page_builds_html_by_hand() -> None:
    """Markup lives in the templates: no escaping helper and no HTML literal in the code."""
    for module in WEB.glob("*.py"):
        text = module.read_text("utf-8")
        assert "html.escape" not in text and "import html" not in text, module.name
        assert "Markup(" not in text or module.name == "templating.py", module.name
        assert not re.search(r"<(p|div|h1|h2|a|ul|li|table|form|input)[ >]", text), module.name


# --- Swedish time ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "element"),
    [
        (
            dt.datetime(2014, 8, 19, 12, 30, tzinfo=dt.UTC),
            '<time datetime="2014-08-19T14:30+02:00">2014-08-19 14:30</time>',
        ),
        (
            dt.datetime(2024, 1, 10, 23, 5, 59, tzinfo=dt.UTC),
            '<time datetime="2024-01-11T00:05+01:00">2024-01-11 00:05</time>',
        ),
        (dt.date(2014, 8, 19), '<time datetime="2014-08-19">2014-08-19</time>'),
    ],
    ids=["summer", "winter-after-midnight", "date"],
)
def test_the_time_filter_gives_swedish_local_time(
    moment: dt.date | dt.datetime, element: str
) -> None:
    assert time_element(moment) == element
    assert TEMPLATES.from_string("<p>{{ moment|time }}</p>").render(moment=moment) == (
        f"<p>{element}</p>"
    )


def test_the_minute_filter_is_the_same_text_without_the_element() -> None:
    moment = dt.datetime(2014, 8, 19, 12, 30, tzinfo=dt.UTC)
    assert swedish_minute(moment) == "2014-08-19 14:30"
    assert TEMPLATES.from_string("{{ moment|minute }}").render(moment=moment) == "2014-08-19 14:30"


def test_a_time_without_a_zone_is_refused() -> None:
    naive = dt.datetime(2014, 8, 19, 12, 30)
    for convert in (time_element, swedish_minute):
        with pytest.raises(ValueError, match="without a time zone"):
            convert(naive)


def test_the_role_filter_names_roles_in_swedish() -> None:
    assert TEMPLATES.from_string("{{ 'chair'|role }}, {{ 'secretary'|role }}").render() == (
        "ordförande, secretary"
    )


def test_values_are_escaped_and_a_missing_one_is_an_error() -> None:
    hostile = "<script>&\"'"
    assert TEMPLATES.from_string('<a title="{{ x }}">{{ x }}</a>').render(x=hostile) == (
        '<a title="&lt;script&gt;&amp;&#34;&#39;">&lt;script&gt;&amp;&#34;&#39;</a>'
    )
    with pytest.raises(UndefinedError, match="'top' is undefined"):
        render("staff/proxy_only.html")
