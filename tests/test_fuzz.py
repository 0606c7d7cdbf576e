"""Property tests on untrusted input: source payloads, location and focus text, model answers, scraped HTML.

Each property is what the rest of the app relies on: a parser fails only with
PayloadError and otherwise returns well-typed listings; a flag always has a known
label and quotes the input; a model answer is used or refused with OutputError;
cleaned HTML carries no script, event handler, javascript: link or htmx attribute.
"""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import config as config_mod
import sanitize
import scraper
from conftest import FIXTURES
from scoring import flags
from scoring.strategies import FactsAnswer, FewshotAnswer, OutputError, parse_json
from scraper.base import Listing, ParseResult, PayloadError

# In CI the examples are derandomized, so a run there fails only on what a developer can repeat;
# locally each run explores new examples (and replays the failing ones hypothesis saved).
CI = bool(os.environ.get("CI"))


def fuzz(n: int):
    """Hypothesis settings: n examples, no deadline (two shared cores), derandomized in CI."""
    return settings(max_examples=n, deadline=None, derandomize=CI, suppress_health_check=[HealthCheck.too_slow])


FUZZ = fuzz(60)

# One recorded payload per source, cut to a few items so each example parses fast.
RECORDED = {
    "remoteok": ("remoteok/remoteok_api_2025-08-28.json", {}),
    "remotive": ("remotive/remotive_all_2026-07.json", {}),
    "hn": ("hn/hn_algolia_hits_trimmed_2026-07.json", {}),
    "wwr": ("wwr/wwr_remote-jobs_2026-07.rss.xml", {}),
    "greenhouse": ("greenhouse/greenhouse_gitlab_content_trimmed3.json", {"board": "gitlab"}),
    "lever": ("lever/lever_hinge_trimmed.json", {"board": "hinge"}),
    "ashby": ("ashby/ashby_notion_trimmed3.json", {"board": "notion"}),
    "arbeitnow": ("arbeitnow/arbeitnow_job-board-api_trimmed3.json", {}),
    "himalayas": ("himalayas/himalayas_jobs_limit5.json", {}),
    "jobicy": ("jobicy/jobicy_v2_remote-jobs.json", {}),
    "workingnomads": ("workingnomads/workingnomads_exposed_jobs.json", {}),
}
ITEMS_KEPT = 4


def test_every_registered_source_is_fuzzed():
    assert set(RECORDED) == set(scraper.SOURCES)


def _trim(data):
    if isinstance(data, list):
        return data[: ITEMS_KEPT + 1]
    if isinstance(data, dict):
        return {k: (v[:ITEMS_KEPT] if isinstance(v, list) and v and isinstance(v[0], dict) else v)
                for k, v in data.items()}
    return data


def _recorded(name: str):
    path, options = RECORDED[name]
    raw = (FIXTURES / path).read_bytes()
    if path.endswith((".xml", ".rss")):
        return raw, options
    return _trim(json.loads(raw.decode("utf-8-sig"))), options


PAYLOADS = {name: _recorded(name) for name in RECORDED}


def parse(name: str, payload):
    """Parse with the source's parser: a ParseResult, or None when it refused the payload as a whole."""
    source = scraper.get_source(name, **PAYLOADS[name][1])
    try:
        result = source.parse(payload)
    except PayloadError as exc:
        assert str(exc), "a PayloadError must say what is wrong"
        return None
    assert_well_typed(name, result)
    return result


def assert_well_typed(name: str, result: ParseResult) -> None:
    assert isinstance(result, ParseResult)
    assert all(isinstance(reason, str) and reason for reason in result.skipped)
    for listing in result.listings:
        assert isinstance(listing, Listing)
        assert listing.source == name
        for field in ("source_id", "title", "company", "location", "url", "description_html", "salary"):
            assert isinstance(getattr(listing, field), str), (field, getattr(listing, field))
        assert listing.source_id and listing.title.strip()
        assert isinstance(listing.tags, list) and all(isinstance(t, str) for t in listing.tags)
        if listing.posted_at is not None:
            assert isinstance(listing.posted_at, str)
            datetime.fromisoformat(listing.posted_at)
        # Stored as JSON next to the listing: it must serialize.
        json.dumps(listing.raw, ensure_ascii=False)


def test_a_feed_declaring_a_bogus_encoding_is_a_payload_error():
    for declared in (b"\x00UTF-8", b"\x80", b"no-such-codec"):
        payload = b'<?xml version="1.0" encoding="' + declared + b'"?><rss version="2.0"><channel></channel></rss>'
        parse("wwr", payload)


def test_recorded_payloads_parse_cleanly():
    for name in RECORDED:
        result = parse(name, PAYLOADS[name][0])
        assert result is not None and result.listings, name


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
# Odd but JSON-expressible values a board could put in any field.
odd_values = json_values | st.sampled_from(
    ["", " ", "0", "-1", "1e309", "NaN", "null", "<script>alert(1)</script>", "2026-13-45T99:99:99Z",
     "\u0000", "\ud7ff\ue000", "a" * 5000, 10**20, -1, 0, 1.5e308, True, [], {}, [None], {"": None}]
)
names = st.sampled_from(sorted(RECORDED))


@pytest.mark.parametrize("name", sorted(RECORDED))
@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes(name, data):
    parse(name, data)


@pytest.mark.parametrize("name", sorted(RECORDED))
@FUZZ
@given(data=json_values)
def test_arbitrary_json_structures(name, data):
    parse(name, data)
    parse(name, json.dumps(data).encode())


def _paths(node, prefix=(), depth=0):
    """Every (container path, key) inside a decoded payload, a few levels deep."""
    if depth > 4:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield prefix, key
            yield from _paths(value, prefix + (key,), depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node[:ITEMS_KEPT + 1]):
            yield prefix, i
            yield from _paths(value, prefix + (i,), depth + 1)


@st.composite
def mutated_payload(draw, name):
    payload = PAYLOADS[name][0]
    if isinstance(payload, bytes):
        # RSS: splice random text, markup or bytes into the recorded document.
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data)))
            cut = draw(st.integers(0, 40))
            insert = draw(st.binary(max_size=20) | st.sampled_from(
                [b"<title>", b"</item>", b"<item>", b"&amp;", b"&#0;", b"<![CDATA[", b"]]>", b"\xff\xfe",
                 b"<script>alert(1)</script>", b"<pubDate>yesterday</pubDate>"]))
            data[at:at + cut] = insert
        return bytes(data)
    data = copy.deepcopy(payload)
    paths = list(_paths(data))
    for _ in range(draw(st.integers(1, 3))):
        prefix, key = draw(st.sampled_from(paths))
        node = data
        try:
            for step in prefix:
                node = node[step]
            if draw(st.booleans()):
                node[key] = copy.deepcopy(draw(odd_values))
            elif isinstance(node, dict):
                node.pop(key, None)
            else:
                node[key] = copy.deepcopy(draw(odd_values))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced this branch
    return data


@pytest.mark.parametrize("name", sorted(RECORDED))
@fuzz(80)
@given(data=st.data())
def test_mutated_recorded_items(name, data):
    payload = data.draw(mutated_payload(name))
    parse(name, payload)
    if not isinstance(payload, bytes):
        parse(name, json.dumps(payload).encode())


# ---------------------------------------------------------------- flags

PEOPLE = [
    config_mod.Person(),
    config_mod.Person(home_city="Auckland", home_country="NZ", utc_offset=12),
    config_mod.Person(home_city="Austin", home_country="US", utc_offset=-6, remote_regions=("Americas",)),
    config_mod.Person(home_city="São Paulo", home_country="BR", utc_offset=-3, home_aliases=("Sampa",)),
]
LOCATION_WORDS = [
    "Remote", "remote", "Hybrid", "On-site", "Onsite", "Berlin", "Germany", "DE", "US", "USA", "United States",
    "only", "EMEA", "Europe", "EU", "Worldwide", "Anywhere", "UTC", "UTC+2", "GMT-5", "CET", "+/- 3h", "UTC-1 to UTC+3",
    "New York, NY", "London", "Auckland", "NZ", "Canada", "LATAM", "APAC", "timezone", "not", "no", "(", ")", ";",
    "|", "/", ",", " - ", "&", "or", "and", "São Paulo", "München", "Zürich", "İstanbul", "ß", "\u200b", "\n",
    "Remote (US only)", "Home based - EMEA", "Multiple locations", "Potsdam", "Sampa", "Texas", "Americas",
]
location_text = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(LOCATION_WORDS) | st.text(max_size=6), max_size=14).map(" ".join),
    st.lists(st.sampled_from(LOCATION_WORDS), max_size=30).map("".join),
)


@fuzz(400)
@given(text=location_text, person=st.sampled_from(PEOPLE))
def test_location_flag_is_a_known_label_quoting_the_input(text, person):
    flag = flags.classify_location(text, person)
    assert flag.kind == "location"
    assert flag.label in flags.LOCATION_LABELS
    assert flag.evidence in text
    if flag.label != "loc:unknown":
        assert flag.evidence.strip()


@fuzz(50)
@given(value=json_values, person=st.sampled_from(PEOPLE))
def test_location_flag_of_non_text_input(value, person):
    flag = flags.classify_location(value, person)
    assert flag.label in flags.LOCATION_LABELS


FOCUS_WORDS = [
    "Senior", "Python", "Engineer", "engineer", "Backend", "back-end", "Sales", "Account Executive", "Designer",
    "Machine Learning", "ML Platform", "Recruiter", "Developer", "DevOps", "Nurse", "Electrical Engineer", "at",
    "for", "-", "|", "@", ",", "(", ")", ":", "–", "/", "Data Engineer", "HR ", "QA", "Golang", "LLM", "İ", "ﬁ",
]
focus_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(FOCUS_WORDS) | st.text(max_size=5), max_size=12).map(" ".join),
)


def _quotes(evidence: str) -> list[tuple[str, str]]:
    """(where, quote) pairs of a focus evidence string such as 'title: Engineer; description: Python'."""
    if evidence == "no role words in title or description":
        return []
    pairs = []
    for part in evidence.split("; description: "):
        where, _, rest = part.partition(": ") if part.startswith(("title: ", "description: ")) else ("description", "", part)
        if rest.startswith("only one tech term (") and rest.endswith(")"):
            pairs.append((where, rest[len("only one tech term ("):-1]))
        elif where == "description":
            pairs += [(where, q) for q in rest.split(", ")]
        else:
            pairs.append((where, rest))
    return pairs


@fuzz(300)
@given(title=focus_text, description=focus_text)
@example(title="", description="PYTHON:İ")
@example(title="İstanbul Python Engineer", description="")
def test_focus_flag_is_a_known_label_quoting_the_input(title, description):
    flag = flags.classify_focus(title, description, config_mod.Focus())
    assert flag.kind == "focus" and flag.label in flags.FOCUS_LABELS and flag.evidence
    for where, quote in _quotes(flag.evidence):
        assert quote and quote in (title if where == "title" else description), (flag.evidence, where, quote)


# ---------------------------------------------------------------- model answers

answer_objects = st.fixed_dictionaries(
    {},
    optional={
        "score": odd_values, "reasoning": odd_values, "evidence": odd_values, "role_family": odd_values,
        "stack": odd_values, "seniority": odd_values,
    },
)
model_text = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    answer_objects.map(json.dumps),
    st.tuples(st.text(max_size=30), answer_objects.map(json.dumps), st.text(max_size=30)).map("".join),
    # Cut-off answers, and nesting deeper than the JSON decoder's recursion limit.
    answer_objects.map(json.dumps).flatmap(lambda s: st.integers(0, len(s)).map(lambda n: s[:n])),
    st.integers(500, 5000).map(lambda n: "[" * n + "]" * n),
    st.integers(500, 5000).map(lambda n: '{"score": ' + '{"a": ' * n + "1" + "}" * n + "}"),
)


@fuzz(300)
@example(text="[" * 3000 + "]" * 3000, answer=FewshotAnswer)
@given(text=model_text, answer=st.sampled_from([FewshotAnswer, FactsAnswer]))
def test_model_answers_are_used_or_refused_with_output_error(text, answer):
    try:
        parsed = parse_json(text, answer)
    except OutputError as exc:
        assert str(exc)
        return
    assert isinstance(parsed, answer)
    if answer is FewshotAnswer:
        assert isinstance(parsed.score, float)


# ---------------------------------------------------------------- scraped HTML

VECTORS = [
    "<script>alert(1)</script>", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "<scr<script>ipt>alert(1)</script>",
    '<img src=x onerror="alert(1)">', "<img src=x oNeRrOr=alert(1)>", "<svg onload=alert(1)>", "<svg><script>x</script>",
    '<a href="javascript:alert(1)">x</a>', '<a href="java\tscript:alert(1)">x</a>', '<a href=" javascript:x">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>', '<a href="&#106;avascript:x">x</a>', '<a href="JaVaScRiPt:x">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', '<a href="vbscript:x">x</a>',
    '<div hx-get="/listing/1/status" hx-trigger="load">x</div>', '<p hx-post="/fetch" hx-trigger="load">',
    '<a href="https://ok.example/" hx-on:click="alert(1)">ok</a>', '<b data-hx-get="/x" hx-on::load="x">b</b>',
    '<p hx-on--before-request="x">p</p>', "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", "<!--<script>alert(1)</script>-->",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">", "<form action=/fetch><button>x</button></form>",
    '<a href="https://ok.example/" onclick="x()" onmouseover=x()>ok</a>', "<body onload=alert(1)>",
    '<object data="javascript:x"></object>', '<embed src="javascript:x">', "<style>@import 'x'</style>",
    '<a href="/relative/path">rel</a>', '<a href="//evil.example/">proto-relative</a>', "<base href=//evil.example/>",
    '<meta http-equiv="refresh" content="0;url=javascript:x">', "<template><script>x</script></template>",
    "<<script>script>alert(1)<</script>/script>", "<img/src/onerror=alert(1)>", "<a\nhref=javascript:x>x</a>",
    '<p title="x" lang="en" class="c" style="color:red" id="main">only href on links may stay</p>',
    '<p<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
]


def _escape(fragment: str) -> str:
    return fragment.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@st.composite
def hostile_description(draw):
    """A real recorded description with attack vectors spliced in, plain or entity-escaped (once or twice)."""
    base = draw(st.sampled_from(DESCRIPTIONS))
    pieces = [base]
    for _ in range(draw(st.integers(1, 4))):
        vector = draw(st.sampled_from(VECTORS))
        for _ in range(draw(st.integers(0, 2))):
            vector = _escape(vector)
        at = draw(st.integers(0, len(pieces[-1])))
        last = pieces.pop()
        pieces += [last[:at], vector, last[at:]]
    return "".join(pieces)


def _descriptions() -> list[str]:
    out = []
    for name in ("remoteok", "greenhouse", "lever", "himalayas", "wwr"):
        result = scraper.get_source(name, **PAYLOADS[name][1]).parse(PAYLOADS[name][0])
        out += [item.description_html[:3000] for item in result.listings[:2] if item.description_html]
    return out


DESCRIPTIONS = _descriptions()


class _Markup(HTMLParser):
    """Every tag and attribute a browser would build from a fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]

    handle_startendtag = handle_starttag


def assert_inert(cleaned: str) -> None:
    markup = _Markup()
    markup.feed(cleaned)
    markup.close()
    assert set(markup.tags) <= sanitize.ALLOWED_TAGS, markup.tags
    for name, value in markup.attrs:
        assert not name.startswith(("on", "hx-", "data-hx", "hx:")), name
        assert name in {"href", "rel", "target"}, name
        if name == "href":
            scheme = "".join(ch for ch in value if ch > " ").split(":", 1)
            assert len(scheme) == 2 and scheme[0].lower() in sanitize.ALLOWED_URL_SCHEMES, value


def test_vectors_alone_are_neutralised():
    for vector in VECTORS:
        for variant in (vector, _escape(vector), _escape(_escape(vector))):
            assert_inert(sanitize.clean_html(variant))


@fuzz(200)
@given(description=hostile_description())
def test_hostile_real_descriptions_are_neutralised(description):
    cleaned = sanitize.clean_html(description)
    assert_inert(cleaned)
    # What the page shows must stay clean if anything downstream decodes it once more.
    assert_inert(sanitize.clean_html(cleaned))


@fuzz(300)
@given(url=st.one_of(
    st.text(max_size=40),
    st.tuples(st.sampled_from(["javascript", "JAVASCRIPT", "java\tscript", " javascript", "\x00javascript",
                               "https", "http", "data", "vbscript", "mailto", "file", ""]),
              st.sampled_from([":", ":/", "://", "&colon;", ""]), st.text(max_size=20)).map("".join),
))
def test_listing_links_are_plain_web_links_or_nothing(url):
    safe = sanitize.safe_url(url)
    if safe is None:
        return
    # Browsers drop tabs and newlines anywhere and control characters at the ends before reading the scheme.
    seen = "".join(ch for ch in safe if ch not in "\t\n\r").strip("".join(chr(c) for c in range(0x21)))
    assert seen.lower().startswith(("http://", "https://"))
