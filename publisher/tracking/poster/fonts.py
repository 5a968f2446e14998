"""Finding fonts for a poster, portably: fontconfig (``fc-match``) where it is installed, which is
also what WeasyPrint's text layout (Pango) uses, else a look through the usual font folders.

A poster whose text needs Chinese, Japanese or Korean glyphs and finds no font for them stops
with one clear line instead of printing empty boxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import regex

from publisher.errors import StoryloopError

CJK_TEXT = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")

# The fontconfig language a CJK text is drawn for: Chinese in simplified forms unless the
# story's language says otherwise (the same character differs in shape between these).
_FC_LANG = {"zh-hant": "zh-tw", "zh-tw": "zh-tw", "zh-hk": "zh-hk", "ja": "ja", "ko": "ko"}
_NAMED_LANG = {"zh-cn": "Chinese", "zh-tw": "Chinese", "zh-hk": "Chinese", "ja": "Japanese"}
# Folder search when fontconfig is missing: file names of common CJK families.
_CJK_FILE_HINTS = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "droidsansfallback")
_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
    "C:/Windows/Fonts",
)


class FontNotFound(StoryloopError):
    """No installed font can draw the poster's text."""


@dataclass(frozen=True)
class Font:
    family: str
    path: Path | None  # set when found by the folder search: the poster then names the file


def needs_cjk(*texts: str | None) -> bool:
    return any(text and CJK_TEXT.search(text) for text in texts)


def fc_lang(lang: str) -> str:
    tag = lang.lower().replace("_", "-")
    for prefix, fc in _FC_LANG.items():
        if tag == prefix or tag.startswith(prefix + "-"):
            return fc
    return "zh-cn"


def text_font(lang: str) -> Font:
    """The sans-serif font fontconfig picks for ``lang`` (Latin and most scripts)."""
    found = _fc_match(f"sans-serif:lang={lang.lower()}")
    return Font(found[0], None) if found else Font("sans-serif", None)


def cjk_font(lang: str) -> Font:
    """A font with the CJK glyphs of ``lang`` (``zh``, ``zh-Hant``, ``ja``, ``ko``)."""
    want = fc_lang(lang)
    found = _fc_match(f"sans-serif:lang={want}")
    if found and want in found[1]:
        return Font(found[0], None)
    searched = _search_folders()
    if searched:
        return searched
    gave = f" (fontconfig offers only {found[0]!r})" if found else ""
    language = _NAMED_LANG.get(want, "Korean")
    raise FontNotFound(
        f"no font with {language} glyphs ({want}) is installed{gave}",
        hint="install Noto Sans CJK, e.g. `apt-get install fonts-noto-cjk` on Debian/Ubuntu",
    )


@lru_cache(maxsize=32)
def _fc_match(pattern: str) -> tuple[str, frozenset[str]] | None:
    """(family, languages it covers) of fontconfig's best match, or None without fontconfig."""
    binary = shutil.which("fc-match")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "--format", "%{family[0]}\t%{lang}", pattern],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    family, _, langs = done.stdout.partition("\t")
    return (family.strip(), frozenset(langs.strip().split("|"))) if family.strip() else None


@lru_cache(maxsize=1)
def _search_folders() -> Font | None:
    """A CJK font file in the usual folders, named by its family (read with fontTools)."""
    from fontTools.ttLib import TTCollection, TTFont

    for folder in _font_dirs():
        for path in sorted(folder.rglob("*")):
            name = path.name.lower().replace("-", "").replace("_", "")
            if path.suffix.lower() not in (".ttc", ".otf", ".ttf"):
                continue
            if not any(hint in name for hint in _CJK_FILE_HINTS):
                continue
            try:
                fonts = TTCollection(path).fonts if name.endswith(".ttc") else [TTFont(path)]
            except Exception:
                continue
            family = fonts[0]["name"].getBestFamilyName()
            if family:
                return Font(str(family), path)
    return None


def _font_dirs() -> list[Path]:
    extra = os.environ.get("STORYLOOP_FONT_DIRS")
    dirs = extra.split(os.pathsep) if extra else list(_FONT_DIRS)
    if sys.platform == "win32" and os.environ.get("WINDIR"):
        dirs.append(os.path.join(os.environ["WINDIR"], "Fonts"))
    return [p for p in (Path(d).expanduser() for d in dirs) if p.is_dir()]


def language_is_cjk(lang: str) -> bool:
    """Whether a story in ``lang`` is written in CJK script (its font then comes first)."""
    return lang.lower().split("-")[0].split("_")[0] in ("zh", "ja", "ko")
