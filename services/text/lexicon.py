"""Word lists that see through obfuscation: the profanity list and per-policy blocklists.

Two sources of terms:

* the ``better-profanity`` word list (signal ``lexicon``), scored into the policy's
  ``profanity.category`` at ``profanity.score``, minus :data:`PROFANITY_EXCLUDED` - words in that list
  that are ordinary, medical, identity or topic words ("kill", "gay", "breasts", "weed"); whether
  those are harmful depends on context, which is the semantic classifier's job;
* each policy category's ``text.blocklist`` (signal ``blocklist``): exact terms, matched like the
  profanity words, and regexes.

Terms are matched as whole words (or whole runs of words for multi-word terms) on the folded text
(see :mod:`services.text.normalise`), after undoing l33t (``k1ll``, ``$hit``, ``@ss``), inserted
punctuation (``f.u.c.k``, ``f-u-c-k``), spacing (``f u c k``), stretched letters (``fuuuuck``) and
run-together words (``killyourself``, ``#killyourself``); a ``*`` inside a word stands for one
letter (``f*ck``). Blocklist terms are also found inside hashtags (``#pleasekillyourselfnow``). A
regex runs on the original text, the folded text and the folded text with l33t undone. Every hit
carries its span in the original text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from modgate.policy import Policy
from services.text.normalise import LEET, Folded, fold

Signal = Literal["lexicon", "blocklist"]

# Entries of the better-profanity list that are not profanity on their own: everyday words
# (suck, screw, strip, organ, pawn, seaman), mild exclamations (god, hell, damn, omg), medical and
# anatomical terms, identity words (gay, queer, lesbians - flagging them is a known harm),
# drug/weapon/sex/violence topic words (weed, meth, porn, nude, kill, murder, rape) that news,
# education and health posts use - the semantic classifier scores those in context.
PROFANITY_EXCLUDED = frozenset(
    str.split(
        """
    anal anus areole arian aryan autoerotic bdsm bimbo bimbos bondage boner breasts
    cipa clitoris cowgirl cowgirls crap crotch damn dink dinks dopey
    doofus drunk dummy ejaculate ejaculated ejaculates ejaculating ejaculatings ejaculation enlargement
    erect erection erotic erotism extacy extasy facial fart fat fingering fisting fisted fisty flange
    floozy fondle foobar foreskin fubar gai gae gay gays gey gigolo glans god gonad gonads gringo guido
    hebe hell hemp heroin herp herpes herpy hiv hitler hooch hookah hooker hooter hooters hootch
    horniest horny hump humped humping hymen incest injun jerk jerked junkie junky kill kinky klan kkk
    kraut labia lech leper lesbians lesbos lmao lmfao loin loins lube lust lusting lusty maxi massa
    masochist menses menstruate menstruation meth molest murder naked napalm nappy nazi nazism negro
    niggle nimrod ninny nipple nipples nude nudes omg opiate opium oral orally organ orgasm orgasms
    orgasmic orgasim orgasims orgies orgy ovary ovum ovums paddy pantie panties panty pastie pasty pawn
    pcp pedo pedophile pedophilia pedophiliac pee peepee penetrate penetration penial penile penis
    perversion peyote phallic phalli pimp piss pissed playboy pms polack pollock poop porn porno
    pornography pornos pot potty prostitute prude prig pube pubic pubis queer queers racy rape raped
    raper raping rapist raunch rectal rectum rectus reefer reich revue rum rump ruski sadism sadist
    sandbar scag schlong screw screwed screwing seaman seamen seduce semen sex sexual shag shota sissy
    skag slave sleaze sleazy slope smut smutty snatch sniper snuff sob sodom souse soused sperm steamy
    stoned strip stripclub stroke stupid suck sucked sucking tampon tawdry teat teets teste
    testee testes testical testicle testis threesome thrust thug tinkle titi toke toots
    tramp transsexual trashy tush ugly undies unwed urinal urine uterus uzi vagina valium viagra virgin
    vixen vodka vomit voyeur vulgar vulva wad wang wedgie weed weenie weewee weiner whiz willies willy
    womb woody wtf xx xxx yaoi len
    """
    )
) | frozenset({"cow girl", "cow girls", "dog style", "strip club", "three some", "auto erotic"})


def profanity_words() -> list[str]:
    """better-profanity's list, minus the excluded entries."""
    path = resources.files("better_profanity") / "profanity_wordlist.txt"
    words = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [w for w in words if w.lower() not in PROFANITY_EXCLUDED]


# --- canonical keys ---------------------------------------------------------------------

_SPLIT = re.compile(r"[^\s,;:/\\()\[\]{}<>\"?]+")
_EDGE_STRIP = re.compile(r"^[^\w$@|+*]+|[^\w$@|+*]+$")
_LETTER = re.compile(r"[a-z]")
WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Unit:
    """One word of the folded text: per kept character its possible readings and position."""

    options: tuple[tuple[str, ...], ...]
    positions: tuple[int, ...]  # folded-text index of each kept character
    hashtag: bool = False

    def __len__(self) -> int:
        return len(self.options)


def word_unit(word: str, offset: int) -> Unit | None:
    """Readings of one word; `offset` is its position in the folded text."""
    hashtag = word.startswith("#")
    stripped = _EDGE_STRIP.sub("", word)
    if not stripped:
        return None
    start = offset + word.index(stripped)
    has_letters = bool(_LETTER.search(stripped))
    options: list[tuple[str, ...]] = []
    positions: list[int] = []
    for i, ch in enumerate(stripped):
        if "a" <= ch <= "z":
            reading: tuple[str, ...] = (ch,)
        elif ch in LEET and has_letters:
            reading = LEET[ch]
        elif ch == WILDCARD and has_letters:
            reading = (WILDCARD,)
        elif ch.isalnum():
            reading = (ch,)
        else:
            continue  # in-word punctuation: f.u.c.k, f-u-c-k, don't
        options.append(reading)
        positions.append(start + i)
    if not options:
        return None
    return Unit(tuple(options), tuple(positions), hashtag)


def term_key(term: str) -> str:
    """The canonical key of a list term: its words' first readings, run together."""
    folded = fold(term).text
    parts: list[str] = []
    for match in _SPLIT.finditer(folded):
        unit = word_unit(match.group(), match.start())
        if unit is not None:
            parts.append("".join(reading[0] for reading in unit.options))
    return "".join(parts)


_RUNS = re.compile(r"(.)\1*")


def collapse(key: str) -> str:
    return re.sub(r"(.)\1+", r"\1", key)


def runs_pattern(key: str) -> re.Pattern[str]:
    """Matches the key with each letter run at least as long as in the key (fuuuck, asss), but not
    shorter (so 'as' is not 'ass')."""
    parts = []
    for run in _RUNS.finditer(key):
        letter, count = re.escape(run.group(1)), len(run.group())
        parts.append(f"{letter}+" if count == 1 else f"{letter}{{{count},}}")
    return re.compile("".join(parts))


# --- terms and hits -----------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    text: str  # as written in the list or policy
    category: str
    score: float
    signal: Signal
    key: str = field(init=False)
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        key = term_key(self.text)
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "pattern", runs_pattern(key))


@dataclass(frozen=True)
class RegexRule:
    pattern: re.Pattern[str]
    category: str
    score: float


@dataclass(frozen=True)
class Hit:
    category: str
    score: float
    signal: Signal
    evidence: str
    start: int  # original-text span
    end: int


_MAX_NGRAM = 4
# Which word a masked spelling (f*ck, sh*t, b*tch) most likely stands for.
_WILDCARD_PREFERENCE = {
    w: i
    for i, w in enumerate(
        [
            "fuck",
            "fucking",
            "fucker",
            "shit",
            "bitch",
            "cunt",
            "dick",
            "cock",
            "pussy",
            "slut",
            "whore",
            "asshole",
            "bastard",
            "twat",
            "wanker",
        ]
    )
}
_MAX_SPACED_RUN = 40
_MAX_READINGS = 16


@dataclass(frozen=True, slots=True)
class _Candidate:
    options: tuple[tuple[str, ...], ...]
    positions: tuple[int, ...]
    hashtag: bool


def _concat(units: Iterable[Unit], hashtag: bool = False) -> _Candidate:
    options: list[tuple[str, ...]] = []
    positions: list[int] = []
    for unit in units:
        options.extend(unit.options)
        positions.extend(unit.positions)
    return _Candidate(tuple(options), tuple(positions), hashtag)


def _readings(options: tuple[tuple[str, ...], ...]) -> Iterable[str]:
    ambiguous = sum(1 for o in options if len(o) > 1)
    if ambiguous == 0:
        yield "".join(o[0] for o in options)
        return
    for i, combo in enumerate(itertools.product(*options)):
        if i >= _MAX_READINGS:
            return
        yield "".join(combo)


class Lexicon:
    """All terms and regexes of one policy (plus the profanity list), ready to match."""

    def __init__(self, terms: Iterable[Term], regexes: Iterable[RegexRule] = ()) -> None:
        self.terms = [t for t in terms if t.key]
        self.regexes = list(regexes)
        self._by_collapsed: dict[str, list[Term]] = {}
        for term in self.terms:
            self._by_collapsed.setdefault(collapse(term.key), []).append(term)
        self._blocklist = [t for t in self.terms if t.signal == "blocklist" and len(t.key) >= 4]

    @classmethod
    def for_policy(cls, policy: Policy, profanity: Iterable[str] | None = None) -> Lexicon:
        terms: list[Term] = []
        regexes: list[RegexRule] = []
        for name, rule in policy.text_categories().items():
            blocklist = rule.blocklist
            terms.extend(Term(t, name, blocklist.score, "blocklist") for t in blocklist.terms)
            regexes.extend(RegexRule(re.compile(r), name, blocklist.score) for r in blocklist.regexes)
        if policy.profanity.enabled:
            words = profanity_words() if profanity is None else profanity
            seen = {t.key for t in terms}
            # Plain spellings first, so evidence reads "fuck", not the list's "f_u_c_k".
            for word in sorted(words, key=lambda w: not w.isalpha()):
                term = Term(word, policy.profanity.category, policy.profanity.score, "lexicon")
                if term.key not in seen and term.key not in PROFANITY_EXCLUDED:
                    seen.add(term.key)
                    terms.append(term)
        return cls(terms, regexes)

    # --- matching ---

    def find(self, folded: Folded, *, all_hashtags: bool = False) -> list[Hit]:
        """Every hit in the text; `all_hashtags`: treat each word as a hashtag (blocklist terms
        are then also found inside words)."""
        hits: list[Hit] = []
        for candidate in self._candidates(folded.text, all_hashtags):
            hits.extend(self._match_candidate(candidate, folded))
        hits.extend(self._match_regexes(folded))
        return _dedupe(hits)

    def _candidates(self, text: str, all_hashtags: bool = False) -> Iterable[_Candidate]:
        units = [u for m in _SPLIT.finditer(text) if (u := word_unit(m.group(), m.start())) is not None]
        if all_hashtags:
            units = [Unit(u.options, u.positions, hashtag=True) for u in units]
        # Runs of single characters (f u c k, k i l l y o u) become one word...
        merged: list[Unit] = []
        i = 0
        while i < len(units):
            j = i
            while j < len(units) and len(units[j]) == 1 and j - i < _MAX_SPACED_RUN:
                j += 1
            if j - i >= 3:
                run = units[i:j]
                merged.append(Unit(*_unit_fields(run)))
                # ...and every stretch of such a run is a candidate too (u r a c u n t).
                for a in range(len(run)):
                    for b in range(a + 3, len(run) + 1):
                        if (a, b) != (0, len(run)):
                            yield _concat(run[a:b])
                i = j
            else:
                merged.append(units[i])
                i += 1
        for start in range(len(merged)):
            for n in range(1, _MAX_NGRAM + 1):
                if start + n > len(merged):
                    break
                window = merged[start : start + n]
                yield _concat(window, hashtag=n == 1 and window[0].hashtag)

    def _match_candidate(self, candidate: _Candidate, folded: Folded) -> Iterable[Hit]:
        found: set[tuple[int, int, str]] = set()
        for reading in _readings(candidate.options):
            for term, start, end in self._lookup(reading, candidate.hashtag):
                if (start, end, term.key) in found:
                    continue
                found.add((start, end, term.key))
                span = folded.to_original(candidate.positions[start], candidate.positions[end - 1] + 1)
                yield _hit(term, span, folded.original)

    def _lookup(self, reading: str, hashtag: bool) -> Iterable[tuple[Term, int, int]]:
        """Terms matching the whole reading (or, for hashtags, inside it), with the
        [start, end) character range of the reading they cover."""
        if WILDCARD in reading:
            yield from self._lookup_wildcard(reading)
            return
        for key in (reading, *_deinflect(reading)):
            matched = False
            for term in self._by_collapsed.get(collapse(key), ()):
                if term.pattern.fullmatch(key):
                    matched = True
                    yield term, 0, len(reading)
            if matched:
                return
        if hashtag:
            for term in self._blocklist:
                for match in term.pattern.finditer(reading):
                    yield term, match.start(), match.end()

    def _lookup_wildcard(self, reading: str) -> Iterable[tuple[Term, int, int]]:
        letters = sum(1 for c in reading if c != WILDCARD)
        if letters <= reading.count(WILDCARD) or letters < 2:
            return  # s**t could be too many words
        pieces = ("[a-z]" if c == WILDCARD else re.escape(c) + "+" for c in collapse(reading))
        pattern = re.compile("".join(pieces))
        matches = [t for t in self.terms if len(t.key) == len(reading) and pattern.fullmatch(t.key)]
        if matches:
            # f*ck could be fack, feck or fuck: name the one people mean, once.
            best = min(matches, key=lambda t: _WILDCARD_PREFERENCE.get(t.key, len(_WILDCARD_PREFERENCE)))
            yield best, 0, len(reading)

    def _match_regexes(self, folded: Folded) -> Iterable[Hit]:
        if not self.regexes:
            return
        views = {folded.text, _leet_view(folded.text)}
        for rule in self.regexes:
            for match in rule.pattern.finditer(folded.original):
                if match.end() > match.start():
                    yield _regex_hit(rule, (match.start(), match.end()), folded.original)
            for view in views:
                for match in rule.pattern.finditer(view):
                    if match.end() > match.start():
                        span = folded.to_original(match.start(), match.end())
                        yield _regex_hit(rule, span, folded.original)


def _leet_view(text: str) -> str:
    """The text with l33t characters read as letters in every word that has a letter. 1 and |
    read as l before a vowel (p1ug, c1ean), else as i (k1ll, 1n). Same length, so spans carry over."""

    def read(token: str, i: int) -> str:
        readings = LEET[token[i]]
        if len(readings) == 1:
            return readings[0]
        before_vowel = i + 1 < len(token) and token[i + 1] in "aeiou"
        return "l" if before_vowel else "i"

    def word(match: re.Match[str]) -> str:
        token = match.group()
        if not _LETTER.search(token):
            return token
        return "".join(read(token, i) if c in LEET else c for i, c in enumerate(token))

    return re.sub(r"\S+", word, text)


def _unit_fields(run: list[Unit]) -> tuple[tuple[tuple[str, ...], ...], tuple[int, ...], bool]:
    joined = _concat(run)
    return joined.options, joined.positions, False


# Ordinary words whose de-inflected stem is a listed term ("spices" -> "spic", a slur).
_NOT_INFLECTIONS = frozenset({"spices", "spiced", "spicy"})


def _deinflect(key: str) -> tuple[str, ...]:
    if key in _NOT_INFLECTIONS:
        return ()
    if key.endswith("es") and len(key) > 4:
        return (key[:-1], key[:-2])
    if key.endswith("s") and len(key) > 3:
        return (key[:-1],)
    return ()


def _hit(term: Term, span: tuple[int, int], original: str) -> Hit:
    written = original[span[0] : span[1]]
    shown = term.text if written.lower() == term.text.lower() else f'{term.text} (written "{written}")'
    label = "profanity" if term.signal == "lexicon" else "blocklist term"
    return Hit(term.category, term.score, term.signal, f"{label}: {shown}", span[0], span[1])


def _regex_hit(rule: RegexRule, span: tuple[int, int], original: str) -> Hit:
    written = original[span[0] : span[1]]
    evidence = f'blocklist regex {rule.pattern.pattern}: "{written}"'
    return Hit(rule.category, rule.score, "blocklist", evidence, span[0], span[1])


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """One hit per span and rule; drop hits inside a longer hit of the same category and signal."""
    unique: dict[tuple[str, str, int, int], Hit] = {}
    for hit in hits:
        unique.setdefault((hit.category, hit.signal, hit.start, hit.end), hit)
    kept = sorted(unique.values(), key=lambda h: (h.start, -(h.end - h.start)))
    result: list[Hit] = []
    for hit in kept:
        inside = any(
            o.category == hit.category
            and o.signal == hit.signal
            and o.start <= hit.start
            and hit.end <= o.end
            and (o.end - o.start) > (hit.end - hit.start)
            for o in kept
        )
        if not inside:
            result.append(hit)
    return result
