"""Translation catalogs of the portal (Babel / gettext).

Catalogs live in `translations/<locale>/LC_MESSAGES/messages.po`; msgids are English. `compile_catalogs()`
writes the `.mo` files beside them (run at build time: `python -m xinglin.portal.i18n`); when a `.mo` is
missing or older than its `.po` (a fresh checkout, an edited catalog), the catalog is compiled in memory
at load, so the pages never show untranslated text because a build step was skipped.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).with_name("translations")
LANGUAGES = {"zh-CN": "zh_CN", "en": "en"}  # html lang -> catalog locale
DEFAULT_LANGUAGE = "zh-CN"


def _po(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def compile_catalogs() -> list[Path]:
    """Compiles every messages.po to messages.mo; returns the files written."""
    written = []
    for po in sorted(TRANSLATIONS.glob("*/LC_MESSAGES/messages.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parts[-3])
        mo = po.with_suffix(".mo")
        with mo.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        written.append(mo)
    return written


@lru_cache
def translations(language: str) -> gettext.NullTranslations:
    locale = LANGUAGES.get(language, LANGUAGES[DEFAULT_LANGUAGE])
    po = _po(locale)
    if not po.exists():
        return gettext.NullTranslations()
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        with mo.open("rb") as f:
            return gettext.GNUTranslations(f)
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def catalog_ids(language: str = "zh-CN") -> set[str]:
    """The msgids a catalog translates (for the completeness test)."""
    with _po(LANGUAGES[language]).open("rb") as f:
        return {m.id for m in read_po(f) if m.id and m.string}


def pick_language(query: str | None, cookie: str | None, tenant_locale: str | None = None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
        if candidate and candidate.lower().startswith("en"):
            return "en"
        if candidate and candidate.lower().startswith("zh"):
            return "zh-CN"
    return tenant_locale if tenant_locale in LANGUAGES else DEFAULT_LANGUAGE


class Translator:
    """`_("Text %(n)s", n=1)` for one request's language."""

    def __init__(self, language: str):
        self.language = language
        self._t = translations(language)

    def __call__(self, message: str, **params) -> str:
        text = self._t.gettext(message)
        return text % params if params else text

    def pick(self, zh: str | None, en: str | None) -> str:
        """Choose between a service's Chinese and English text (errors, department names)."""
        return (en or zh or "") if self.language == "en" else (zh or en or "")


if __name__ == "__main__":
    for path in compile_catalogs():
        print(path)
