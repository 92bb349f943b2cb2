"""Translation hook for messages the engine shows to users.

The engine must not import Flask, yet its messages should follow the language of the request
being served. So every user-facing string goes through :func:`_`, which calls a translator
the web layer installs once at start-up::

    from flask_babel import gettext
    from engine.i18n import set_translator

    set_translator(gettext)

The msgids are the Simplified Chinese texts themselves: Chinese is the primary language, so
with no translator (tests, CLI tools, scheduled jobs) users still read correct text, and an
English catalogue maps the Chinese msgids to English.

Messages with values use named ``str.format`` placeholders (``"不能小于 {min}。"``) and are
translated *before* formatting, so the catalogue holds one msgid per message, not one per value.
Callers must call :func:`_` when the message is produced (at validation time), never at import
time, or the text would be frozen in whatever language was active at import.

Extract msgids with ``pybabel extract -k _ -k N_``.
"""

from __future__ import annotations

from collections.abc import Callable

Translator = Callable[[str], str]


def _identity(text: str) -> str:
    """Return ``text`` unchanged: the msgids are already the Chinese texts.

    :param text: a msgid
    :return: ``text``
    """
    return text


# Module-level rather than per-request: flask-babel's gettext already looks up the locale of
# the current request itself, so one installed function serves every request and thread.
_translator: Translator = _identity


def _(text: str) -> str:
    """Translate a msgid with the installed translator.

    :param text: the Simplified Chinese msgid
    :return: the text in the current language (the msgid itself if no translator is installed)
    """
    return _translator(text)


def N_(text: str) -> str:
    """Mark ``text`` as a msgid without translating it.

    Used for message constants defined at import time, which must only be translated when a
    message is produced; the marker lets ``pybabel extract -k N_`` still find them.

    :param text: the Simplified Chinese msgid
    :return: ``text`` unchanged
    """
    return text


def set_translator(translator: Translator | None) -> Translator:
    """Install the function :func:`_` calls; ``None`` restores the identity translator.

    :param translator: e.g. ``flask_babel.gettext``; takes a msgid and returns its translation
    :return: the translator that was installed before, so tests can put it back
    """
    global _translator
    previous = _translator
    _translator = translator if translator is not None else _identity
    return previous
