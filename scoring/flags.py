"""Deterministic flags: where a listing can be worked from (location) and what kind of role it is (focus).

Both are decided by code from observable text, never by a model, and each flag
carries the exact words of the listing that decided it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import config as config_mod
from scoring import geo

# Best first, in the order a person prefers them.
LOCATION_LABELS = (
    "loc:home", "loc:remote", "loc:country-other", "loc:remote-restricted", "loc:overseas-onsite", "loc:unknown",
)
FOCUS_LABELS = ("focus:priority", "focus:tech", "focus:non-tech")
_RANK = {label: i for i, label in enumerate(LOCATION_LABELS)}


@dataclass(frozen=True)
class Flag:
    """One flag of a listing with the words that decided it."""

    kind: str  # "location" | "focus"
    label: str
    evidence: str  # exact substring(s) of the input; "" only for loc:unknown


# ===========================================================================
# Location
# ===========================================================================

# Location strings longer than this are descriptions pasted into the field; the head is enough.
_MAX_CHARS = 1000
# The home metro: cities this close to the home city count as home.
METRO_RADIUS_KM = 40.0
# Longest place name we try, in words ('Saint Vincent and the Grenadines').
_MAX_WORDS = 5

# ';' '|' and line breaks separate independent options ('Remote, US; Berlin, Germany').
_GROUP_RE = re.compile(r"[^;|\n\r•]+")
_TOKEN_RE = re.compile(r"[^\W_]+(?:['’.&][^\W_]+)*")
# What may sit between the words of one place name: 'Palo Alto', 'Winston-Salem', 'St. Louis'.
_JOIN_RE = re.compile(r"[ \t]+|[-‐]|\.[ \t]*")

# Remote words, folded; True when the word also lifts every restriction.
_REMOTE_WORDS = {
    "remote": False, "remotely": False, "remote first": False, "remote friendly": False, "fully remote": False,
    "wfh": False, "work from home": False, "working from home": False, "home based": False, "homebased": False,
    "home office": False, "homeoffice": False, "distributed": False, "telecommute": False, "telework": False,
    "teletrabajo": False, "remoto": False, "remota": False, "teletravail": False, "fernarbeit": False,
    "anywhere": True, "work from anywhere": True, "worldwide": True, "world wide": True, "world": True,
    "global": True, "globally": True,
}
# Remote only in part: on-site in the city named, so not a remote word.
_PARTLY_REMOTE = frozenset({
    "partially remote", "partly remote", "part remote", "semi remote", "hybrid remote", "remote hybrid",
})
_NEGATIONS = frozenset({"no", "not", "non"})
_ZONE_WORDS = frozenset({"timezone", "timezones", "time", "tz", "hours"})
# Words between a place and its state or country that keep them together ('Waterloo region, Canada').
_DESCRIPTORS = frozenset({
    "region", "area", "metro", "metropolitan", "city", "greater", "county", "province", "state", "district",
    "downtown", "municipality",
})
# Words that belong in a location field without naming a place; anything else unrecognized is
# 'unexplained', and a group of mostly unexplained lower-case words is a sentence, not a place.
_NEUTRAL = _DESCRIPTORS | frozenset("""
    a an the in on at of for from to with within across inside near next around and or but by per via plus only
    also all any other both either must be is are can may will open possible optional preferred required
    office offices onsite site person hybrid hq headquarters headquartered based located location locations
    multiple various flexible friendly first fully full partially partly mostly primarily time times timezone
    timezones zone zones tz hours hour overlap east west north south central eastern western northern southern
    northeast northwest southeast southwest midwest coast coastal street st avenue ave road rd suite floor
    building campus days day week weeks weekly month x relocation relocate visa sponsorship countries country
    work working job jobs team company
""".split())


@dataclass
class _Token:
    start: int
    end: int
    text: str
    key: str
    upper: bool  # every letter upper case ('US', 'NYC', 'U.S')
    cap: bool  # starts upper case


@dataclass
class _Entity:
    kind: str  # "place" | "region" | "tz" | "remote"
    start: int
    end: int
    first: int  # token indices covered, first..last inclusive
    last: int
    places: list = field(default_factory=list)  # readings, for kind "place"
    weak: bool = False  # a code that is also a word: needs a neighbour to confirm it
    home_alias: bool = False
    zone_of: bool = False  # 'US timezones': a country used as a working-hours limit
    region: str = ""
    lo: float = 0.0
    hi: float = 0.0
    worldwide: bool = False
    anywhere: bool = False
    negated: bool = False
    chosen: geo.Place | None = None
    supported: bool = False


@dataclass(frozen=True)
class _PersonView:
    """What classification needs to know about a person, computed once per person."""

    country: str
    countries: frozenset  # the home country plus countries named in remote_regions
    regions: frozenset  # canonical region names the person is inside
    offset: float
    home: geo.Place | None
    home_keys: frozenset  # folded home city and aliases


@lru_cache(maxsize=64)
def _person_view(person: config_mod.Person) -> _PersonView:
    # Settings may say 'Germany' where an ISO code is expected; read it either way.
    country = geo.country_code(person.home_country)
    gaz = geo.gazetteer()
    home = gaz.city(person.home_city, country) if person.home_city else None
    keys = {geo.fold(a) for a in (person.home_city, *person.home_aliases) if a and a.strip()}
    regions, countries = geo.region_members(country, person.remote_regions)
    return _PersonView(country, countries, regions, float(person.utc_offset), home, frozenset(keys))


# --- timezones written as offsets: 'UTC+2', 'GMT-3 to GMT+3', 'CET +/- 2h'

_ZONE_NAMES = "|".join(sorted(geo.TIMEZONES, key=len, reverse=True))
_OFFSET = r"(?P<sign{n}>[+\-−–])\s?(?P<h{n}>\d{{1,2}})(?::?(?P<m{n}>[0-5]\d))?"
_ZONE_RE = re.compile(
    rf"(?<![A-Za-z])(?P<zone>{_ZONE_NAMES})(?![A-Za-z])(?:\s?{_OFFSET.format(n=1)}(?![\d:]))?"
)
_RANGE_TAIL_RE = re.compile(
    rf"\s*(?:to|-|–|—|and|through|until|till)\s*(?:(?P<zone2>{_ZONE_NAMES})(?![A-Za-z]))?\s?"
    rf"{_OFFSET.format(n=2)}?(?![\d:])"
)
_PLUS_MINUS_AFTER_RE = re.compile(r"\s*(?:\+/-|\+-|±|\+/−)\s*(\d{1,2})\s*(?:h\b|hrs?\b|hours?\b)?")
_PLUS_MINUS_BEFORE_RE = re.compile(
    r"(?:(?:\+/-|\+-|±|\+/−)\s*(\d{1,2})\s*(?:h|hrs?|hours?)?|within\s+(\d{1,2})\s*(?:h|hrs?|hours?))"
    r"\s*(?:of|from|around)?\s*$",
    re.I,
)
_ZONE_SUFFIX_RE = re.compile(r"\s*(?:time|timezone|time zone|tz|hours)\b", re.I)
_ZONE_SEPARATOR_RE = re.compile(r"\s*(?:[/,&+]|or|and)?\s*")


def _offset(match: re.Match, n: int, base: float) -> float | None:
    sign = match.group(f"sign{n}")
    if sign is None:
        return None
    hours = int(match.group(f"h{n}")) + int(match.group(f"m{n}") or 0) / 60
    return base + (hours if sign == "+" else -hours)


def _timezones(text: str, start: int, end: int) -> list[tuple[int, int, float, float, bool]]:
    """Timezone limits in text[start:end] as (start, end, lowest, highest, ambiguous)."""
    found = []
    pos = start
    while True:
        m = _ZONE_RE.search(text, pos, end)
        if not m:
            break
        zone = m.group("zone")
        base = float(geo.TIMEZONES[zone])
        first = _offset(m, 1, base)
        value = base if first is None else first
        lo = hi = value
        stop = m.end()
        ranged = False
        tail = _RANGE_TAIL_RE.match(text, stop, end)
        if tail and (tail.group("zone2") or tail.group("sign2")):
            other_base = float(geo.TIMEZONES[tail.group("zone2")]) if tail.group("zone2") else base
            second = _offset(tail, 2, other_base)
            other = other_base if second is None else second
            lo, hi = min(value, other), max(value, other)
            stop = tail.end()
            ranged = True
        pm = _PLUS_MINUS_AFTER_RE.match(text, stop, end)
        before = _PLUS_MINUS_BEFORE_RE.search(text[max(start, m.start() - 30):m.start()])
        if pm:
            lo, hi = value - int(pm.group(1)), value + int(pm.group(1))
            stop = pm.end()
            ranged = True
        elif before and not ranged:
            spread = int(before.group(1) or before.group(2))
            lo, hi = value - spread, value + spread
            ranged = True
        if not ranged:
            # A single zone: daylight saving and 'roughly CET' both allow an hour either way.
            lo, hi = value - 1, value + 1
        ambiguous = zone in geo.AMBIGUOUS_ZONES and first is None and not ranged
        found.append((m.start(), stop, lo, hi, ambiguous))
        pos = stop
    # 'ET/CT/MT' are zones; a lone 'CT' or 'PT' is more likely Connecticut or Portugal.
    kept = []
    for i, (s, e, lo, hi, ambiguous) in enumerate(found):
        if ambiguous:
            near = False
            if i + 1 < len(found) and _ZONE_SEPARATOR_RE.fullmatch(text, e, found[i + 1][0]):
                near = True
            if i > 0 and _ZONE_SEPARATOR_RE.fullmatch(text, found[i - 1][1], s):
                near = True
            if _ZONE_SUFFIX_RE.match(text, e, end):
                near = True
            if not near:
                continue
        kept.append((s, e, lo, hi, ambiguous))
    return kept


# --- reading one group ('Remote (US)', 'Berlin, Germany')


class _Group:
    """The entities of one ';'-separated part of a location string, resolved for one person."""

    def __init__(self, text: str, start: int, end: int, view: _PersonView, all_lower: bool) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.view = view
        self.all_lower = all_lower
        self.entities: list[_Entity] = []
        self._scan()
        self._mark_remote_words()
        self._resolve_places()

    # -- scanning

    def _scan(self) -> None:
        text = self.text
        zones = _timezones(text, self.start, self.end)
        tokens = []
        for m in _TOKEN_RE.finditer(text, self.start, self.end):
            if any(s <= m.start() < e for s, e, *_ in zones):
                continue
            t = m.group()
            letters = [ch for ch in t if ch.isalpha()]
            tokens.append(_Token(m.start(), m.end(), t, geo.fold(t),
                                 bool(letters) and all(ch.isupper() for ch in letters), t[:1].isupper()))
        self.tokens = tokens
        self.kinds = ["neutral"] * len(tokens)
        entities = []
        for s, e, lo, hi, _ in zones:
            # Place the zone among the tokens so adjacency and order still work.
            idx = sum(1 for t in tokens if t.end <= s)
            entities.append(_Entity("tz", s, e, idx, idx - 1, lo=lo, hi=hi))
        i = 0
        n = len(tokens)
        while i < n:
            run = 1
            while i + run < n and run < _MAX_WORDS and _JOIN_RE.fullmatch(text, tokens[i + run - 1].end, tokens[i + run].start):
                run += 1
            for length in range(run, 0, -1):
                entity = self._match(tokens, i, length)
                if entity is not None:
                    entities.append(entity)
                    for k in range(i, i + length):
                        self.kinds[k] = entity.kind
                    i += length
                    break
            else:
                tok = tokens[i]
                if tok.key in _NEUTRAL or tok.key.isdigit() or any(ch.isdigit() for ch in tok.key) or len(tok.key) < 2:
                    self.kinds[i] = "descriptor" if tok.key in _DESCRIPTORS else "neutral"
                else:
                    self.kinds[i] = "unexplained"
                i += 1
        entities.sort(key=lambda en: en.start)
        for en in entities:
            if en.kind == "place" and en.last + 1 < n and tokens[en.last + 1].key in _ZONE_WORDS:
                en.zone_of = True
        self.entities = entities

    def _match(self, tokens: list[_Token], i: int, length: int) -> _Entity | None:
        toks = tokens[i:i + length]
        key = " ".join(t.key for t in toks)
        s, e = toks[0].start, toks[-1].end
        last = i + length - 1
        view = self.view
        if key in _REMOTE_WORDS:
            return _Entity("remote", s, e, i, last, worldwide=_REMOTE_WORDS[key], anywhere=key == "anywhere")
        if key in _PARTLY_REMOTE:
            return _Entity("partly", s, e, i, last)
        zone = geo.zone_phrases().get(key)
        if zone is not None:
            return _Entity("tz", s, e, i, last, lo=zone - 1, hi=zone + 1)
        region = geo.region_keys().get(key)
        if region is not None and (key != "eu" or toks[0].upper or self.all_lower):
            return _Entity("region", s, e, i, last, region=region)
        capitalized = toks[0].cap or self.all_lower
        if length == 1 and (key in _NEUTRAL or key in _NEGATIONS):
            # 'Non', 'Central', 'Of' are also town names somewhere; alone they are just words.
            capitalized = False
        if key in view.home_keys:
            places = [p for p in geo.lookup_name(key)] if capitalized else []
            if not any(p.country == view.country for p in places):
                home = view.home or geo.Place("city", view.country, "", toks[0].text, 10.0)
                places.insert(0, home)
            return _Entity("place", s, e, i, last, places=places, home_alias=True)
        if capitalized:
            places = geo.lookup_name(key)
            if places:
                return _Entity("place", s, e, i, last, places=places)
        if length == 1:
            tok = toks[0]
            code = tok.text.upper().rstrip(".")
            if (tok.upper and len(tok.key) >= 2) or (self.all_lower and code not in geo.WEAK_CODES):
                places = geo.lookup_code(code)
                if places:
                    weak = code in geo.WEAK_CODES or (self.all_lower and len(code) == 2 and code not in ("US", "UK"))
                    return _Entity("place", s, e, i, last, places=places, weak=weak)
        return None

    # -- remote words in context

    def _mark_remote_words(self) -> None:
        tokens = self.tokens
        for en in self.entities:
            if en.kind != "remote":
                continue
            # 'No remote', 'non-remote', 'Remote: no'.
            if en.first > 0 and tokens[en.first - 1].key in _NEGATIONS:
                en.negated = True
            if en.last + 1 < len(tokens) and tokens[en.last + 1].key in ("no", "not"):
                en.negated = True
            if en.anywhere:
                # 'Anywhere in the US' is limited to the US; 'Anywhere in the World' is not.
                k = en.last + 1
                while k < len(tokens) and tokens[k].key in ("in", "within", "across", "inside", "the"):
                    k += 1
                if k > en.last + 1:
                    nxt = next((x for x in self.entities if x.first == k and x.kind in ("place", "region")), None)
                    if nxt is not None:
                        en.worldwide = False

    # -- places in context

    def _adjacent(self, a: _Entity, b: _Entity) -> bool:
        return all(self.kinds[k] == "descriptor" for k in range(a.last + 1, b.first))

    def _resolve_places(self) -> None:
        places = [en for en in self.entities if en.kind == "place"]
        # Codes that are also words stay only when a neighbouring place confirms them.
        confirmed = []
        for k, en in enumerate(places):
            if en.weak and not any(
                _related(en.places, nb.places) for nb in self._neighbours(places, k)
            ):
                en.kind = "dropped"
                continue
            confirmed.append(en)
        places = confirmed
        view = self.view
        for k, en in enumerate(places):
            nbrs = self._neighbours(places, k)
            others = [o for o in places if o is not en and o not in nbrs]
            best, best_score, best_support = None, float("-inf"), 0
            for p in en.places:
                score = p.prior
                if p.country == view.country:
                    # A listing naming 'Hamilton' for a person in New Zealand most likely means
                    # theirs, but not when the other Hamilton is several times larger.
                    score += 0.5 if p.kind == "city" else 1.6
                support = sum(1 for nb in nbrs if _related([p], nb.places))
                score += 10 * support + 3 * sum(1 for o in others if _related([p], o.places))
                if score > best_score:
                    best, best_score, best_support = p, score, support
            en.chosen, en.supported = best, best_support > 0
            # 'Stanford, CA': no Stanford in California in the gazetteer, so this is a place
            # we do not know (the state still says where), not Stanford-le-Hope in England.
            if (
                not en.supported and not en.home_alias
                and all(p.kind == "city" for p in en.places)
                and any(all(q.kind != "city" for q in nb.places) for nb in nbrs)
            ):
                en.kind = "dropped"

    def _neighbours(self, places: list[_Entity], k: int) -> list[_Entity]:
        out = []
        if k > 0 and self._adjacent(places[k - 1], places[k]):
            out.append(places[k - 1])
        if k + 1 < len(places) and self._adjacent(places[k], places[k + 1]):
            out.append(places[k + 1])
        return out

    # -- the options this group offers

    def is_sentence(self) -> bool:
        """True when the group reads as prose ('Immigration support for US candidates'), not as places."""
        unexplained = [t for t, kind in zip(self.tokens, self.kinds) if kind == "unexplained"]
        lower = [t for t in unexplained if not t.cap]
        named = sum(1 for kind in self.kinds if kind in ("place", "region", "tz"))
        return len(unexplained) >= 2 and bool(lower) and len(unexplained) > named

    def options(self) -> list[tuple[str, int, int]]:
        """Every (label, evidence start, evidence end) this group allows."""
        ents = [en for en in self.entities if en.kind in ("place", "region", "tz", "remote")]
        remote = [en for en in ents if en.kind == "remote" and not en.negated]
        if not remote and self.is_sentence():
            return []
        view = self.view
        out = []
        places = [en for en in ents if en.kind == "place"]
        regions = [en for en in ents if en.kind == "region"]
        zones = [en for en in ents if en.kind == "tz"]
        if remote:
            worldwide = [en for en in remote if en.worldwide]
            scope = [en for en in places if en.chosen.kind == "country"] + regions + zones
            if worldwide:
                anchor = worldwide[0]
                plain = min(remote, key=lambda r: abs(r.start - anchor.start))
                out.append(("loc:remote",) + _span([anchor, plain] if abs(plain.start - anchor.start) < 12 else [anchor]))
            elif scope:
                countries = {en.chosen.country for en in scope if en.kind == "place"}
                inside = _in_scope(countries, {en.region for en in regions}, zones, view)
                anchor = min(remote, key=lambda r: min(abs(r.start - x.start) for x in scope))
                label = "loc:remote" if inside else "loc:remote-restricted"
                # Show the limit next to the remote word: 'Remote (UK)' rather than 'UK / Remote (UK)'.
                after = [x for x in scope if x.start > anchor.start]
                out.append((label,) + _span([anchor] + (after or scope)))
            else:
                out.append(("loc:remote", remote[0].start, remote[0].end))
        else:
            # A bare region or timezone with no remote word is a remote job limited to it:
            # nobody is hired on-site in 'EMEA'.
            for en in regions:
                inside = _in_scope(set(), {en.region}, [], view)
                out.append(("loc:remote" if inside else "loc:remote-restricted", en.start, en.end))
            for en in places:
                if en.zone_of and en.chosen.kind == "country":
                    inside = _in_scope({en.chosen.country}, set(), [], view)
                    out.append(("loc:remote" if inside else "loc:remote-restricted", en.start, en.end))
            if zones:
                inside = _in_scope(set(), set(), zones, view)
                out.append(("loc:remote" if inside else "loc:remote-restricted",) + _span(zones))
        for en in places:
            out.append((self._onsite_label(en), en.start, en.end))
        return out

    def _onsite_label(self, en: _Entity) -> str:
        view = self.view
        p = en.chosen
        if p.country == view.country:
            if en.home_alias:
                return "loc:home"
            if p.kind == "city" and view.home is not None and geo.distance_km(p, view.home) <= METRO_RADIUS_KM:
                return "loc:home"
            return "loc:country-other"
        return "loc:overseas-onsite"


def _related(a: list, b: list) -> bool:
    return any(p.within(q) or q.within(p) for p in a for q in b)


def _in_scope(countries: set, regions: set, zones: list, view: _PersonView) -> bool:
    """True when a remote limit (countries, regions, timezones) includes the person."""
    place_ok = True
    if countries or regions:
        place_ok = bool(countries & view.countries) or bool(regions & view.regions)
    zone_ok = not zones or any(z.lo <= view.offset <= z.hi for z in zones)
    return place_ok and zone_ok


def _span(entities: list[_Entity]) -> tuple[int, int]:
    return min(en.start for en in entities), max(en.end for en in entities)


def _evidence(text: str, start: int, end: int) -> str:
    """The substring text[start:end], widened to close a bracket it opens ('Remote (US)')."""
    snippet = text[start:end]
    if snippet.count("(") > snippet.count(")"):
        close = text.find(")", end)
        if close != -1 and close - end <= 24 and not any(ch in text[end:close] for ch in "(;|"):
            end = close + 1
    elif snippet.count(")") > snippet.count("("):
        opening = text.rfind("(", 0, start)
        if opening != -1 and not text[opening + 1:start].strip():
            start = opening
    return text[start:end].strip()


@lru_cache(maxsize=8192)
def _classify(location: str, person: config_mod.Person) -> Flag:
    text = location[:_MAX_CHARS]
    view = _person_view(person)
    all_lower = not any(ch.isupper() for ch in text)
    best = None
    for m in _GROUP_RE.finditer(text):
        if not m.group().strip():
            continue
        group = _Group(text, m.start(), m.end(), view, all_lower)
        for label, s, e in group.options():
            if best is None or _RANK[label] < _RANK[best[0]]:
                best = (label, s, e)
    if best is None:
        return Flag("location", "loc:unknown", "")
    label, s, e = best
    return Flag("location", label, _evidence(text, s, e))


def classify_location(location: str, person: config_mod.Person) -> Flag:
    """The location flag of a listing's location string for this person."""
    if not isinstance(location, str):
        location = "" if location is None else str(location)
    return _classify(location, person)


def clear_cache() -> None:
    """Forget memoized classifications (for benchmarks that time the uncached path)."""
    _classify.cache_clear()


# ===========================================================================
# Focus
# ===========================================================================

_TERM_SPLIT_RE = re.compile(r"[\s\-/]+")
# How much of a description decides the focus when the title names no role.
_DESCRIPTION_HEAD_CHARS = 6000
# Descriptions are searched in chunks; the overlap is longer than any term.
_CHUNK = 2048
_OVERLAP = 96
# Where a title's main role ends: 'Recruiter - Engineering', 'Data Engineer, Marketing'.
_TITLE_SEGMENT_RE = re.compile(r"\s[-–—|@]\s|[,(\[|:]|\s(?:at|for)\s", re.I)


@dataclass(frozen=True)
class _Hit:
    tier: str  # "priority" | "tech" | "non_tech"
    start: int
    end: int
    quote: str


def _trie(terms: list[str]) -> str:
    """A regex matching any of `terms`, shared prefixes merged, longest alternative first."""
    root: dict = {}
    for term in terms:
        node = root
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        ends = "" in node
        branches = [
            (r"[\s\-/]*" if ch == " " else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items()) if ch
        ]
        if not branches:
            return ""
        if len(branches) == 1 and not ends:
            return branches[0]
        # Greedy '?' tries the longer term first: 'electrical engineer' before 'electrical'.
        return "(?:" + "|".join(branches) + ")" + ("?" if ends else "")

    return emit(root)


def _terms_pattern(terms: list[str]) -> re.Pattern | None:
    """One pattern for whole-word terms, run on lower-cased text."""
    words = [t for t in terms if re.fullmatch(r"\w(?:.*\w)?", t, re.A)]
    symbols = sorted((t for t in terms if t not in words), key=len, reverse=True)
    # A prefix tree behind one \b, ASCII word boundaries: about twice as fast over long
    # descriptions as a flat alternation, which is what most of the flagging time goes to.
    parts = []
    if words:
        parts.append(rf"\b{_trie(words)}\b")
    if symbols:  # 'c++', '.net': \b does not work next to symbols
        body = "|".join(r"[\s\-/]*".join(re.escape(w) for w in t.split(" ")) for t in symbols)
        parts.append(rf"(?<!\w)(?:{body})(?!\w)")
    return re.compile("|".join(parts), re.A) if parts else None


class _FocusTerms:
    """Compiled matchers for a person's focus keyword tiers."""

    def __init__(self, focus: config_mod.Focus) -> None:
        tiers: dict[str, str] = {}
        # Later tiers win when a term sits in two lists: priority over non-tech over tech.
        for tier, terms in (("tech", focus.tech), ("non_tech", focus.non_tech), ("priority", focus.priority)):
            for term in terms:
                words = [w for w in _TERM_SPLIT_RE.split(term.strip().lower()) if w]
                if words:
                    tiers[" ".join(words)] = tier
        self.tiers = tiers
        # 'ML-Platform', 'ml platform' and 'mlplatform' are one term.
        self.squashed = {t.replace(" ", ""): tier for t, tier in tiers.items()}
        self.every = _terms_pattern(list(tiers))
        self.priority = _terms_pattern([t for t, tier in tiers.items() if tier == "priority"])

    def _scan(self, pattern: re.Pattern | None, text: str, html: bool, first_only: bool) -> list[_Hit]:
        # Lower-case and search a few kilobytes at a time: most listings name a term early,
        # and lower() of a 60 kB description costs as much as the search itself.
        out: list[_Hit] = []
        if not text or pattern is None:
            return out
        size = len(text)
        pos = 0
        while pos < size:
            stop = min(size, pos + _CHUNK)
            original = text[pos:stop + _OVERLAP]
            lowered = original.lower()
            for m in pattern.finditer(lowered):
                if stop < size and m.start() >= _CHUNK:
                    break  # the next chunk starts here and will find it whole
                start, end = m.span()
                if len(original) != len(lowered):
                    # lower() lengthens a few letters ('İ' -> 'i̇'): map the span back onto the original.
                    start, end = _original_span(original, start, end)
                at = pos + start
                if start == 0 and pos and (text[pos - 1].isalnum() or text[pos - 1] == "_"):
                    continue  # the chunk cut a word: 'rust' at the start of '...t|rust...'
                if html and text.rfind("<", 0, at) > text.rfind(">", 0, at):
                    continue  # inside '<a href="...python.org">': markup, not words of the listing
                key = _TERM_SPLIT_RE.sub("", m.group())
                quote = original[start:end]
                out.append(_Hit(self.squashed.get(key, "tech"), at, at + len(quote), quote))
                if first_only:
                    return out
            pos = stop
        return out

    def hits(self, text: str, html: bool = False) -> list[_Hit]:
        """Every non-overlapping tier term in text, left to right."""
        return self._scan(self.every, text, html, first_only=False)

    def first_priority(self, text: str, html: bool = False) -> _Hit | None:
        """The first priority term in text, if any."""
        found = self._scan(self.priority, text, html, first_only=True)
        return found[0] if found else None


def _original_span(original: str, start: int, end: int) -> tuple[int, int]:
    """The span of `original` whose lower() is original.lower()[start:end]."""
    lowered_at = 0
    first = last = len(original)
    for i, ch in enumerate(original):
        if lowered_at >= start and first == len(original):
            first = i
        lowered_at += len(ch.lower())
        if lowered_at >= end:
            last = i + 1
            break
    return first, max(first, last)


@lru_cache(maxsize=16)
def _focus_terms(focus: config_mod.Focus) -> _FocusTerms:
    return _FocusTerms(focus)


def _title_head(title: str, hits: list[_Hit]) -> _Hit:
    """The hit that names the role: the last one in the title's first part that has any."""
    cuts = [m.start() for m in _TITLE_SEGMENT_RE.finditer(title)] + [len(title)]
    seg_start = 0
    for cut in cuts:
        inside = [h for h in hits if seg_start <= h.start < cut]
        if inside:
            return inside[-1]
        seg_start = cut
    return hits[-1]


def classify_focus(title: str, description_text: str, focus: config_mod.Focus) -> Flag:
    """The focus flag of a listing: priority, tech or non-tech, from its title first."""
    return _focus(title, description_text, focus, html=False)


def _focus(title: str, description: str, focus: config_mod.Focus, html: bool) -> Flag:
    title = title if isinstance(title, str) else ""
    description = description if isinstance(description, str) else ""
    terms = _focus_terms(focus)
    in_title = terms.hits(title)
    if in_title:
        head = _title_head(title, in_title)
        if head.tier == "non_tech":
            return Flag("focus", "focus:non-tech", f"title: {head.quote}")
        priority = [h for h in in_title if h.tier == "priority"]
        if priority:
            return Flag("focus", "focus:priority", f"title: {priority[0].quote}")
        in_desc = terms.first_priority(description, html)
        if in_desc is not None:
            return Flag("focus", "focus:priority", f"title: {head.quote}; description: {in_desc.quote}")
        return Flag("focus", "focus:tech", f"title: {head.quote}")
    # No role word in the title ('Ninja', 'Rockstar wanted'): the description decides, and one
    # passing tech word is not enough, since most job ads mention software somewhere. Tech needs
    # at least two distinct tech terms and more of them than non-tech terms; otherwise non-tech.
    # The head of a long description says what the role is; the tail is benefits and legal text.
    techish: dict[str, _Hit] = {}
    non_tech: dict[str, _Hit] = {}
    for h in terms.hits(description[:_DESCRIPTION_HEAD_CHARS], html):
        bucket = non_tech if h.tier == "non_tech" else techish
        bucket.setdefault(_TERM_SPLIT_RE.sub("", h.quote.lower()), h)
    if len(techish) >= 2 and len(techish) > len(non_tech):
        quotes = ", ".join(h.quote for h in list(techish.values())[:3])
        label = "focus:priority" if any(h.tier == "priority" for h in techish.values()) else "focus:tech"
        return Flag("focus", label, f"description: {quotes}")
    if non_tech:
        quotes = ", ".join(h.quote for h in list(non_tech.values())[:3])
        return Flag("focus", "focus:non-tech", f"description: {quotes}")
    if techish:
        only = next(iter(techish.values()))
        return Flag("focus", "focus:non-tech", f"description: only one tech term ({only.quote})")
    return Flag("focus", "focus:non-tech", "no role words in title or description")


# ===========================================================================


def compute_flags(item, config: config_mod.Config) -> list[Flag]:
    """The location and focus flags of a listing (anything with title, location, description_html)."""
    location = getattr(item, "location", "") or ""
    title = getattr(item, "title", "") or ""
    # Terms are matched on the HTML itself, skipping markup: converting every description
    # to text first would cost more than all the matching.
    description_html = getattr(item, "description_html", "") or ""
    return [
        classify_location(location, config.person),
        _focus(title, description_html, config.focus, html=True),
    ]
