"""Translations of the page scripts (djangojs catalog) and templates, and the language switch
on every page.

Page scripts hold Chinese msgids in t("…"), tn("…", "…", n) and pt("context", "…")
(static/shared/i18n.js); the
English comes from /jsi18n/. These tests read the scripts themselves, so a string added
later without an English entry fails here, not in front of an English-speaking user.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from tests.factories import RoomFactory

STATIC = Path(settings.BASE_DIR) / "static"
# Every page script (shared/ holds the helpers themselves, vendor/ third-party code).
PAGE_SCRIPTS = sorted(
    str(path.relative_to(STATIC))
    for path in STATIC.glob("*/*.js")
    if path.parent.name not in {"shared", "vendor"}
)
# One string per script, with the English a user should read.
SAMPLES = {
    "console/console.js": ("禁言10分钟", "Mute 10 min"),
    "viewer/viewer.js": ("已抢光", "Sold out"),
    "viewer/streamer.js": ("已关注", "Following"),
    "viewer/session.js": ("观众{n}", "Viewer{n}"),
    "viewer/api.js": ("满{threshold}减{amount}", "¥{amount} off ¥{threshold}+"),
    "workspace/workspace.js": ("公海", "Lead pool"),
    "campaigns/campaigns.js": ("对照组", "Holdout"),
}
# The placeholders an English entry must use, where they differ from its msgid's: "8折" is
# paying 80%, English says "20% off" from a second number the script passes (viewer/api.js).
ENGLISH_PLACEHOLDERS = {"{n}折": {"off"}}

STRING = r'"((?:[^"\\]|\\.)*)"'
CALL = re.compile(rf"\b(tn?|pt)\(\s*{STRING}(?:\s*,\s*{STRING})?")
COMMENT = re.compile(r"/\*.*?\*/|(?<![:\"'])//[^\n]*", re.S)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def script_messages(name: str) -> list[tuple[str, str | None]]:
    """(catalog key, msgid_plural or None) for every t()/tn()/pt() call in one script.

    Comments are skipped; a pt() key is "context\\x04msgid", as in Django's catalog."""
    source = COMMENT.sub("", (STATIC / name).read_text(encoding="utf-8"))
    messages = []
    for kind, first, second in CALL.findall(source):
        first, second = json.loads(f'"{first}"'), json.loads(f'"{second}"')
        if kind == "pt":
            messages.append((f"{first}\x04{second}", None))
        else:
            messages.append((first, second if kind == "tn" else None))
    return messages


def served_catalog(client, language: str) -> dict:
    """The catalog object /jsi18n/ hands the browser for one language."""
    response = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    body = response.content.decode()
    found = re.search(r"const newcatalog = (\{.*?\});\n", body, re.S)
    assert found, "no catalog in /jsi18n/"
    return json.loads(found.group(1))


# A Chinese string literal in code (comments stripped): user-facing text to translate.
CHINESE_LITERAL = re.compile(r"[\"'`][^\"'`\n]*[\u4e00-\u9fff]")


def test_each_page_script_translates_through_i18n_js():
    for name in PAGE_SCRIPTS:
        source = (STATIC / name).read_text(encoding="utf-8")
        code = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.S)
        if not CHINESE_LITERAL.search(code):
            continue  # nothing to show a user (e.g. viewer/wechat.js)
        assert 'from "../shared/i18n.js"' in source, name
        assert script_messages(name), f"{name} has no t() strings"


@pytest.mark.django_db
def test_english_catalog_translates_a_sample_from_each_page_script(client):
    catalog = served_catalog(client, "en")
    for name, (chinese, english) in SAMPLES.items():
        assert (chinese, None) in script_messages(name), name
        assert catalog.get(chinese) == english, name
    assert catalog["{n} 粉丝"] == ["{n} follower", "{n} followers"]
    # One Chinese word, two English ones: the lead status and the console's counter.
    assert catalog["新线索"] == "New"
    assert catalog["room stats\x04新线索"] == "New leads"


@pytest.mark.django_db
def test_every_string_in_the_page_scripts_has_english(client):
    catalog = served_catalog(client, "en")
    untranslated, bad_placeholders = [], []
    for name in PAGE_SCRIPTS:
        for msgid, plural in script_messages(name):
            english = catalog.get(msgid)
            forms = english if isinstance(english, list) else [english]
            if plural is not None and not isinstance(english, list):
                forms = [None]
            if not all(form and form.strip() for form in forms):
                untranslated.append(f"{name}: {msgid}")
                continue
            # Every value shown, and no {name} the script does not fill.
            wanted = ENGLISH_PLACEHOLDERS.get(msgid, set(PLACEHOLDER.findall(msgid)))
            for form in forms:
                if set(PLACEHOLDER.findall(form)) != wanted:
                    bad_placeholders.append(f"{name}: {msgid} -> {form}")
    assert not untranslated, "no English for:\n" + "\n".join(untranslated)
    assert not bad_placeholders, "placeholders differ:\n" + "\n".join(bad_placeholders)


@pytest.mark.django_db
def test_chinese_is_the_default_and_carries_no_english(client):
    response = client.get("/jsi18n/")
    assert response.status_code == 200
    assert "Sold out" not in response.content.decode()
    assert "Sold out" in client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_every_page_has_a_language_switch_that_comes_back_to_it(client, host_alice):
    room = RoomFactory(streamer=host_alice.profile)
    pages = [
        "/",
        "/console/",
        "/live/",
        f"/live/{room.pk}/",
        f"/streamers/{host_alice.profile.pk}/",
        "/workspace/",
        "/workspace/campaigns/",
    ]
    for url in pages:
        html = client.get(url).content.decode()
        assert '<html lang="zh-hans">' in html, url
        assert 'action="/i18n/setlang/"' in html, url
        assert f'name="next" type="hidden" value="{url}"' in html, url
        assert '<button name="language" value="en" lang="en">English</button>' in html, url

    response = client.post("/i18n/setlang/", {"language": "en", "next": f"/live/{room.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/live/{room.pk}/"
    for url in pages:
        html = client.get(url).content.decode()
        assert '<html lang="en">' in html, url
        assert '<button name="language" value="zh-hans" lang="zh-hans">中文</button>' in html, url


def test_every_template_string_has_english():
    templates = Path(settings.BASE_DIR) / "templates"
    tag = re.compile(r"""\{%\s*translate\s+(["'])(.+?)\1""")
    untranslated = []
    with translation.override("en"):
        for path in sorted(templates.rglob("*.html")):
            for _, msgid in tag.findall(path.read_text(encoding="utf-8")):
                # The translate tag looks a literal up with its percent signs doubled.
                key = msgid.replace("%", "%%")
                if translation.gettext(key) == key:
                    untranslated.append(f"{path.relative_to(templates)}: {msgid}")
    assert not untranslated, "no English for:\n" + "\n".join(untranslated)
