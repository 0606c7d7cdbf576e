"""Untrusted HTML and URLs from job boards, made safe to show on the dashboard.

Descriptions are cleaned by one nh3 allowlist; listing URLs become links only when
they are plain http(s). Templates call the `sanitize` filter and `safe_url`, never `|safe`.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import nh3
from markupsafe import Markup

ALLOWED_TAGS = frozenset(
    {"p", "br", "ul", "ol", "li", "strong", "em", "b", "i", "a", "h2", "h3", "h4", "blockquote", "code", "pre"}
)
ALLOWED_URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Dropped together with everything inside them: their text is code or chrome, never
# part of the job description a person wants to read.
_DROPPED_WITH_CONTENT = frozenset(
    {"script", "style", "template", "iframe", "object", "embed", "noscript", "noembed", "noframes",
     "textarea", "title", "xmp", "svg", "math", "select", "option"}
)

CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(_DROPPED_WITH_CONTENT),
    # "*" empty: nh3 otherwise keeps its default generic attributes (title, lang) on every tag.
    attributes={"a": {"href"}, "*": set()},
    url_schemes=set(ALLOWED_URL_SCHEMES),
    # A relative link in a board's description would point into jobsift itself.
    url_relative="deny",
    strip_comments=True,
    link_rel="noopener noreferrer nofollow",
    set_tag_attribute_values={"a": {"target": "_blank"}},
)

# Browsers drop these anywhere in a URL before reading its scheme ("java\tscript:").
_URL_INVISIBLES_RE = re.compile(r"[\t\n\r]")
_LISTING_URL_SCHEMES = frozenset({"http", "https"})
# ...and strip these from both ends, as the URL standard does.
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))


def clean_html(fragment: str | None) -> str:
    """Sanitized HTML of a description: entities decoded first, then the allowlist applied."""
    if not fragment:
        return ""
    # Some boards send entity-escaped HTML (&lt;p&gt;); cleaning before decoding
    # would let an escaped <script> come back to life on the page.
    return CLEANER.clean(html.unescape(str(fragment)))


def sanitize(fragment: str | None) -> Markup:
    """Jinja filter: a description as cleaned, ready-to-insert Markup."""
    return Markup(clean_html(fragment))


def safe_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) link, else None (render it as text)."""
    if not url:
        return None
    candidate = _URL_INVISIBLES_RE.sub("", str(url)).strip(_C0_AND_SPACE)
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in _LISTING_URL_SCHEMES or not parts.netloc:
        return None
    return candidate


def init_app(app) -> None:
    """Register the `sanitize` filter and the `safe_url` template global on the app."""
    app.jinja_env.filters["sanitize"] = sanitize
    app.jinja_env.globals["safe_url"] = safe_url
    app.jinja_env.filters["highlight"] = highlight


_TAG_SPLIT_RE = re.compile(r"(<[^>]*>)")


def highlight(cleaned: Markup | str, quotes) -> Markup:
    """Wrap each evidence quote's first occurrence in <mark>, in text outside tags only.

    `cleaned` must already be sanitized HTML; quotes are untrusted and escaped here.
    A quote that spans markup is left unmarked rather than risk breaking the HTML.
    """
    out = str(cleaned)
    for quote in quotes or []:
        q = (quote or "").strip().strip("…").strip()
        if len(q) < 3:
            continue
        # Text in cleaned HTML escapes &, < and > only, so escape the quote the same way.
        needle = re.compile(r"\s+".join(re.escape(w) for w in html.escape(q, quote=False).split()), re.I)
        parts = _TAG_SPLIT_RE.split(out)
        for i, part in enumerate(parts):
            if part.startswith("<"):
                continue
            new, n = needle.subn(lambda m: f"<mark>{m.group(0)}</mark>", part, count=1)
            if n:
                parts[i] = new
                break
        out = "".join(parts)
    return Markup(out)
