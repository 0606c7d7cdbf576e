"""Field normalization shared by every source: text, HTML, dates, salaries, tags, ids.

Every helper accepts anything (None, numbers, lists, nested garbage) and returns a
value of the promised type, because boards change their payloads without notice
and one odd field must never cost the rest of a batch.
"""

from __future__ import annotations

import html
import json
import math
import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable

from scraper.base import Listing, ParseResult, PayloadError

# ---------------------------------------------------------------- payloads


def load_json(payload: Any, source: str) -> Any:
    """Decode a JSON payload given as bytes or str (a leading BOM is fine); objects pass through."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        data = bytes(payload)
        if not data.strip():
            raise PayloadError(f"{source}: empty payload, expected JSON")
        try:
            # json.loads on bytes detects UTF-8 (with or without BOM), UTF-16 and UTF-32.
            return json.loads(data)
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{source}: payload is not UTF-8 JSON ({exc.reason} at byte {exc.start})") from exc
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"{source}: payload is not JSON ({_json_reason(exc)}); it starts with {_preview(data)}") from exc
    if isinstance(payload, str):
        text = payload.lstrip("\ufeff")
        if not text.strip():
            raise PayloadError(f"{source}: empty payload, expected JSON")
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PayloadError(f"{source}: payload is not JSON ({_json_reason(exc)}); it starts with {_preview(text)}") from exc
    return payload


def _json_reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)


def _preview(data: bytes | str) -> str:
    if isinstance(data, bytes):
        data = data[:60].decode("utf-8", errors="replace")
    return repr(data.strip()[:60])


def item_list(data: Any, source: str, keys: tuple[str, ...] = ("jobs",)) -> list:
    """The list of job items in a decoded payload: a bare list, or the list under one of `keys`."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in keys:
            if isinstance(data.get(key), list):
                return data[key]
        found = ", ".join(repr(k) for k in list(data)[:8]) or "no keys"
        wanted = " or ".join(repr(k) for k in keys)
        raise PayloadError(f"{source}: expected a list of jobs or an object with {wanted}; got an object with {found}")
    raise PayloadError(f"{source}: expected a list of jobs or an object with {keys[0]!r}; got {type(data).__name__}")


class MissingField(Exception):
    """An item lacks a field no listing can do without (its id or title)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def parse_items(source: str, items: Iterable, build: Callable[[dict], Listing | None], start: int = 0) -> ParseResult:
    """Build a listing from each item, recording why any item was skipped.

    `build` returns None for items that are not job listings at all (an HN reply),
    and raises MissingField when a required field is absent. `start` is the index
    of the first item in the published payload, so reasons point at the right one.
    """
    result = ParseResult()
    for index, item in enumerate(items, start):
        if not isinstance(item, dict):
            result.skipped.append(f"{source} item {index}: not an object ({type(item).__name__})")
            continue
        try:
            listing = build(item)
        except MissingField as exc:
            result.skipped.append(f"{source} item {index}: missing {exc.field}")
            continue
        except Exception as exc:  # noqa: BLE001 - one odd item must not cost the rest of the batch
            result.skipped.append(f"{source} item {index}: unreadable ({type(exc).__name__}: {exc})")
            continue
        if listing is not None:
            result.listings.append(listing)
    return result


def merge(results: Iterable[ParseResult]) -> ParseResult:
    """One ParseResult from several pages, keeping the first copy of a listing seen twice."""
    merged = ParseResult()
    seen: set[str] = set()
    for result in results:
        for listing in result.listings:
            if listing.source_id not in seen:
                seen.add(listing.source_id)
                merged.listings.append(listing)
        merged.skipped.extend(result.skipped)
    return merged


# ---------------------------------------------------------------- ids and text


def as_id(value: Any) -> str | None:
    """A listing id as a string: ints and non-empty strings qualify, anything else does not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def require_id(item: dict, *keys: str) -> str:
    """The first usable id among `keys`, or MissingField naming the first key."""
    for key in keys:
        found = as_id(item.get(key))
        if found:
            return found
    raise MissingField(keys[0])


def require_text(item: dict, key: str, fix: Callable[[str], str] | None = None) -> str:
    """The cleaned text of a required field, or MissingField."""
    value = item.get(key)
    if fix is not None and isinstance(value, str):
        value = fix(value)
    text = clean_text(value)
    if not text:
        raise MissingField(key)
    return text


# The entities boards use most, with what html.unescape makes of each.
_COMMON_ENTITIES = {
    "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'", "&#x2F;": "/", "&nbsp;": "\xa0",
    "&amp;": "&",
}
_COMMON_ENTITY_RE = re.compile("|".join(re.escape(entity) for entity in _COMMON_ENTITIES))
_entity_char = _COMMON_ENTITIES.__getitem__
# Above this many '&', one str.replace per entity beats a regex callback per entity.
_MANY_ENTITIES = 48


def unescape_html(text: str) -> str:
    """html.unescape(text), computed without a Python call per entity when only common ones occur.

    Entity-escaped descriptions hold thousands of '&lt;' and '&gt;', and html.unescape
    calls back into Python for each. When every '&' starts one of the common
    entities, replacing them gives exactly html.unescape's result; anything else (a
    rare entity, a bare '&') goes through html.unescape itself.
    """
    ampersands = text.count("&")
    if not ampersands:
        return text
    if ampersands <= _MANY_ENTITIES:
        fast, replaced = _COMMON_ENTITY_RE.subn(lambda m: _entity_char(m.group()), text)
        return fast if replaced == ampersands else html.unescape(text)
    fast = text
    for entity, char in _COMMON_ENTITIES.items():
        if entity != "&amp;":
            fast = fast.replace(entity, char)
    # No replacement above produces a '&', so replacing '&amp;' last cannot create
    # an entity html.unescape would not have seen (it makes a single pass).
    amps = fast.count("&amp;")
    if fast.count("&") != amps:
        return html.unescape(text)
    return fast.replace("&amp;", "&") if amps else fast


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE_RE = re.compile(r"\s+")


def clean_text(value: Any) -> str:
    """Plain text for a title, company or location: entities unescaped, whitespace collapsed."""
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    if not isinstance(value, str):
        return ""
    text = value
    # Some boards escape twice ("&amp;amp;"); two rounds undo that and stop.
    for _ in range(2):
        unescaped = unescape_html(text)
        if unescaped == text:
            break
        text = unescaped
    text = _CONTROL_RE.sub("", text)
    return _SPACE_RE.sub(" ", text).strip()


_ESCAPED_TAG_RE = re.compile(r"&lt;/?[a-zA-Z][a-zA-Z0-9]*(?:[\s/]|&gt;)")
_REAL_TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*[\s/>]")


def description_html(value: Any) -> str:
    """A description as real HTML: entity-escaped HTML (Greenhouse `content`) is unescaped once.

    Escaped markup is unescaped when it outweighs real tags, so a board that appends
    a real-HTML footer to an escaped body still comes out as HTML, while a real
    description quoting one escaped '<div>' stays as it is. Sanitizing is the
    dashboard's job at render time; this keeps what the board sent.
    """
    if not isinstance(value, str):
        return ""
    text = _CONTROL_RE.sub("", value).strip()
    if _escaped_markup_wins(text):
        text = unescape_html(text)
    return text


def _escaped_markup_wins(text: str) -> bool:
    """True when escaped tags ('&lt;p&gt;') outnumber real ones, counting no further than needed."""
    if "&lt;" not in text:
        return False
    real = len(_REAL_TAG_RE.findall(text))
    escaped = 0
    for _ in _ESCAPED_TAG_RE.finditer(text):
        escaped += 1
        if escaped > real:
            return True
    return False


def tag_list(*values: Any) -> list[str]:
    """Tags from lists or comma-separated strings, cleaned and de-duplicated in order."""
    tags: list[str] = []
    seen: set[str] = set()
    for value in values:
        if isinstance(value, str):
            parts = value.split(",")
        elif isinstance(value, (list, tuple)):
            parts = value
        else:
            continue
        for part in parts:
            tag = clean_text(part) if isinstance(part, str) else ""
            if tag and tag.lower() not in seen:
                seen.add(tag.lower())
                tags.append(tag)
    return tags


def prettify_board(token: Any) -> str:
    """A display name from a board token: 'acme-robotics' -> 'Acme Robotics'."""
    if not isinstance(token, str):
        return ""
    words = [w for w in re.split(r"[-_.\s]+", token.strip()) if w]
    return " ".join(w[:1].upper() + w[1:] for w in words)


_REMOTE_WORD_RE = re.compile(r"\b(remote|anywhere|worldwide|work from home|wfh|home[- ]based|telecommute)", re.I)


def has_remote_word(text: str) -> bool:
    """Whether a location string already says the job is remote."""
    return bool(_REMOTE_WORD_RE.search(text or ""))


def with_work_mode(location: str, mode: str) -> str:
    """Append '(Remote)' or '(Hybrid)' to a location that does not already say so."""
    if not mode:
        return location
    if mode == "Remote" and has_remote_word(location):
        return location
    if mode.lower() in location.lower():
        return location
    return f"{location} ({mode})" if location else mode


# ---------------------------------------------------------------- mojibake

# UTF-8 bytes decoded as Latin-1 or cp1252 turn "’" into "â\x80\x99" or "â€™".
# Each character maps back to the byte it came from; a run that then decodes as
# UTF-8 is replaced, anything else is left alone.
_BYTE_OF: dict[str, int] = {chr(b): b for b in range(0x80, 0x100)}
for _b in range(0x80, 0xA0):
    try:
        _BYTE_OF.setdefault(bytes([_b]).decode("cp1252"), _b)
    except UnicodeDecodeError:
        pass


def _char_class(low: int, high: int) -> str:
    chars = sorted(ch for ch, b in _BYTE_OF.items() if low <= b <= high)
    return "[" + "".join(re.escape(ch) for ch in chars) + "]"


_CONT = _char_class(0x80, 0xBF)
# One character class first, so the regex engine can skip ahead to candidate lead
# characters (about three times faster over long descriptions than a plain alternation
# of the three sequence lengths); the look-behinds then pick the length.
_MOJIBAKE_RE = re.compile(
    f"{_char_class(0xC2, 0xF4)}"
    f"(?:(?<={_char_class(0xC2, 0xDF)}){_CONT}"
    f"|(?<={_char_class(0xE0, 0xEF)}){_CONT}{{2}}"
    f"|(?<={_char_class(0xF0, 0xF4)}){_CONT}{{3}})"
)
# The same few sequences ('â€™', 'Ã©') recur in every description.
_REPAIRED: dict[str, str] = {}


def _undo_mojibake(match: re.Match) -> str:
    chunk = match.group(0)
    fixed = _REPAIRED.get(chunk)
    if fixed is None:
        try:
            fixed = bytes(_BYTE_OF[ch] for ch in chunk).decode("utf-8")
        except UnicodeDecodeError:
            fixed = chunk
        if len(_REPAIRED) < 4096:
            _REPAIRED[chunk] = fixed
    return fixed


def fix_mojibake(text: Any) -> Any:
    """Repair UTF-8 text that was decoded as Latin-1/cp1252 (once or twice); other text is unchanged."""
    if not isinstance(text, str):
        return text
    # Text decoded wrongly twice needs two rounds; a third changes nothing real.
    for _ in range(3):
        if text.isascii():  # constant time in CPython: no lead character to look for
            break
        fixed = _MOJIBAKE_RE.sub(_undo_mojibake, text)
        if fixed == text:
            break
        text = fixed
    return text


_LITERAL_ESCAPE_RE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})|\\u([0-9a-fA-F]{4})|\\([nrt/\"])")
_SIMPLE_ESCAPES = {"n": "\n", "r": "", "t": "\t", "/": "/", '"': '"'}


def _unescape_literal(match: re.Match) -> str:
    high, low, single, simple = match.groups()
    if simple:
        return _SIMPLE_ESCAPES[simple]
    if high:
        code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        return chr(code)
    code = int(single, 16)
    # A lone surrogate cannot be stored as UTF-8; drop it.
    return "" if 0xD800 <= code <= 0xDFFF else chr(code)


def fix_literal_escapes(text: Any) -> Any:
    """Turn JSON escapes that were escaped twice (a literal '\\n', '\\uD83D\\uDCF8') into characters."""
    if not isinstance(text, str) or "\\" not in text:
        return text
    return _LITERAL_ESCAPE_RE.sub(_unescape_literal, text)


# ---------------------------------------------------------------- dates

# Epoch values at or above this are milliseconds (1e11 seconds is the year 5138).
_MS_THRESHOLD = 1e11
_FRACTION_RE = re.compile(r"(\.\d{1,6})\d*")


def iso_utc(value: Any) -> str | None:
    """ISO 8601 UTC ('YYYY-MM-DDTHH:MM:SS+00:00') from epoch s/ms, ISO (no zone = UTC) or RFC 822."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _from_epoch(float(text))
    moment = _parse_iso(text) or _parse_rfc822(text)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()
    except (OverflowError, ValueError):
        return None


def _from_epoch(seconds: float) -> str | None:
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds >= _MS_THRESHOLD:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(int(seconds), timezone.utc).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def _parse_iso(text: str) -> datetime | None:
    candidate = text.replace(" ", "T", 1) if re.match(r"\d{4}-\d\d-\d\d \d", text) else text
    # fromisoformat takes at most microseconds; some APIs send nanoseconds.
    candidate = _FRACTION_RE.sub(r"\1", candidate, count=1)
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        return None


def _parse_rfc822(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# ---------------------------------------------------------------- salaries

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
_PERIODS = (
    ("year", ("year", "annual", "yr")),
    ("month", ("month",)),
    ("week", ("week",)),
    ("day", ("day", "daily")),
    ("hour", ("hour", "hr")),
)


def _amount(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _short_amount(n: float) -> str:
    if n >= 1_000_000:
        return f"{round(n / 1_000_000, 2):g}M"
    if n >= 1000:
        return f"{round(n / 1000, 1):g}k"
    return f"{n:g}" if n.is_integer() else f"{n:.2f}"


def salary_period(value: Any) -> str:
    """'year', 'month', 'week', 'day' or 'hour' from labels like 'per-year-salary' or 'hourly'."""
    if not isinstance(value, str):
        return ""
    lowered = value.lower()
    for period, words in _PERIODS:
        if any(word in lowered for word in words):
            return period
    return ""


def salary_range(low: Any, high: Any, currency: Any = None, period: Any = None) -> str:
    """A short salary such as '$150k–$180k/year' from numbers; 0, negatives and garbage mean unknown."""
    lo, hi = _amount(low), _amount(high)
    if lo is None and hi is None:
        return ""
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    code = currency.strip().upper() if isinstance(currency, str) else ""
    symbol = _SYMBOLS.get(code, "")

    def money(n: float) -> str:
        return f"{symbol}{_short_amount(n)}"

    if lo is not None and hi is not None and lo != hi:
        text = f"{money(lo)}–{money(hi)}"
    elif lo is not None and hi is not None:
        text = money(lo)
    elif lo is not None:
        text = f"{money(lo)}+"
    else:
        text = f"up to {money(hi)}"
    if code and not symbol and re.fullmatch(r"[A-Z]{3}", code):
        text = f"{code} {text}"
    per = salary_period(period)
    return f"{text}/{per}" if per else text


# ---------------------------------------------------------------- company boards

_BOARD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def board_token(options: dict, source: str) -> str | None:
    """The `board` option of a company-board source, checked so it is safe inside a URL path."""
    board = options.get("board")
    if board is None or board == "":
        return None
    if not isinstance(board, str) or not _BOARD_RE.fullmatch(board.strip()):
        raise ValueError(f"{source}: board must be a token like 'acme' or 'acme-robotics', got {board!r}")
    return board.strip()


def need_board(board: str | None, source: str) -> str:
    """The board token a fetch needs, or a message saying how to give one."""
    if not board:
        raise ValueError(f"{source}: fetching needs a board, e.g. get_source({source!r}, board='acme')")
    return board


def board_from_url(url: Any, host: str) -> str:
    """The board token in a hosted job URL such as https://jobs.lever.co/<board>/<id>."""
    if not isinstance(url, str):
        return ""
    match = re.match(rf"https?://{re.escape(host)}/([A-Za-z0-9_.-]+)/", url.strip())
    return match.group(1) if match else ""


def positive_int(value: Any, default: int) -> int:
    """An option read as a positive integer, or `default`."""
    if isinstance(value, bool):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return number if number > 0 else default


def as_list(value: Any) -> list:
    """`value` when it is a list, else an empty list (a field that should be a list but is not)."""
    return value if isinstance(value, list) else []


_REMOTE_WORD_RE = re.compile(r"remote|anywhere|worldwide|world\s*wide|global|home.based|work from home", re.I)


def remote_board_location(location: str) -> str:
    """Location of a listing on a remote-only board: what it names is where candidates may live.

    'Brazil' on such a board means 'remote, for candidates in Brazil', not an office
    in Brazil, so the location flag should read it as a remote restriction.
    """
    location = (location or "").strip()
    if not location:
        return "Remote"
    if _REMOTE_WORD_RE.search(location):
        return location
    return f"Remote ({location})"
