"""A cheap guess of an item's language, so non-English text is marked low-confidence.

The encoder (all-MiniLM-L6-v2) and the exemplars are English; other languages are scored anyway
(never an error) but the scores mean little, and the response says so. The guess uses the writing
system and, for Latin script, common function words of a few languages - enough to tell "this is
not English", which is all the note needs. Returns a BCP 47 tag: ``en``, ``fr``, ``es``..., or
``und-Cyrl``/``und-Arab``/... (undetermined language, known script), or ``und``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the a an and or but to of in on at for with is are was were be been am i you he she it we they "
        "me my your his her our their this that these those not no do does did have has had will would "
        "can could should just so if what who how why when where all some there here from by as up out "
        "about im its dont cant youre ill ive"
    ),
    "es": _words("el la los las de del que y en un una por para con no es se lo su al como más pero muy"),
    "fr": _words(
        "le la les de des du et est un une je tu il elle nous vous pas que qui pour dans ce sur avec"
    ),
    "de": _words("der die das und ist nicht ich du er sie wir ein eine zu mit den dem von auf für auch"),
    "pt": _words("o a os as de do da que e em um uma não você para com por se mais muito"),
    "it": _words("il lo la gli le di che e è un una per non sono con mi ti del della anche"),
    "nl": _words("de het een en van ik je is niet dat die op te met zijn voor maar"),
    "tr": _words("ve bir bu da de ne için çok ben sen mi değil gibi ama var yok"),
    "id": _words("yang dan di ini itu ke dari tidak aku kamu dengan untuk ada saya"),
}

# Scripts that identify a language on their own; others only give the script.
_SCRIPT_LANGUAGE = {"HANGUL": "ko", "HIRAGANA": "ja", "KATAKANA": "ja", "THAI": "th", "GREEK": "el"}
_SCRIPT_SUBTAG = {
    "CYRILLIC": "Cyrl", "ARABIC": "Arab", "HEBREW": "Hebr", "CJK": "Hani", "DEVANAGARI": "Deva",
    "BENGALI": "Beng", "TAMIL": "Taml", "GEORGIAN": "Geor", "ARMENIAN": "Armn", "ETHIOPIC": "Ethi",
}  # fmt: skip
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def _script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else ""


def guess_language(text: str) -> str:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "und"
    scripts = Counter(_script(ch) for ch in letters)
    script, count = scripts.most_common(1)[0]
    if script != "LATIN" and count >= 0.5 * len(letters):
        if "HIRAGANA" in scripts or "KATAKANA" in scripts:
            return "ja"
        if script in _SCRIPT_LANGUAGE:
            return _SCRIPT_LANGUAGE[script]
        return f"und-{_SCRIPT_SUBTAG.get(script, 'Zyyy')}"
    words = [w.lower().replace("'", "") for w in _WORDS.findall(text)]
    if len(words) < 4:
        return "en"  # too short to tell: titles and hashtags are mostly English here
    hits = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
    best = max(hits, key=lambda lang: (hits[lang], lang == "en"))
    if best == "en" or hits[best] < 2 or hits[best] <= hits["en"]:
        return "en"
    return best


def low_confidence_note(language: str, trusted: frozenset[str] = frozenset({"en"})) -> str | None:
    """A note when the scores mean less for `language`: outside `trusted`, the languages the
    encoder reads and the scorer was trained on (English only for MiniLM and exemplars)."""
    if language == "und" or language in trusted:
        return None
    if trusted == {"en"}:
        return (
            f"language looks like {language!r}, not English: the semantic model and exemplars are English, "
            "so semantic scores are low-confidence; word lists still apply"
        )
    return (
        f"language looks like {language!r}, which the text scorer was not trained on "
        f"(trained: {', '.join(sorted(trusted))}): scores are lower-confidence; word lists still apply"
    )
