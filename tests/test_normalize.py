"""Field normalization: dates, text, HTML, mojibake, salaries, tags, payload decoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scraper.base import PayloadError
from scraper.normalize import (
    as_id,
    clean_text,
    description_html,
    fix_literal_escapes,
    fix_mojibake,
    item_list,
    iso_utc,
    load_json,
    parse_items,
    prettify_board,
    require_id,
    salary_range,
    tag_list,
    with_work_mode,
)

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1756382403, "2025-08-28T12:00:03+00:00"),  # Remote OK epoch seconds
        (1779223091267, "2026-05-19T20:38:11+00:00"),  # Lever createdAt milliseconds
        ("1783731532", "2026-07-11T00:58:52+00:00"),  # numeric string
        ("2026-07-26T20:49:11", "2026-07-26T20:49:11+00:00"),  # Remotive: no zone means UTC
        ("2026-04-17T05:58:03-04:00", "2026-04-17T09:58:03+00:00"),  # Greenhouse offset
        ("2026-07-01T15:01:52.000Z", "2026-07-01T15:01:52+00:00"),  # Algolia
        ("2026-04-02T21:00:55.755+00:00", "2026-04-02T21:00:55+00:00"),  # Ashby
        ("2026-04-02T21:00:55.123456789Z", "2026-04-02T21:00:55+00:00"),  # nanoseconds
        ("2026-07-01 15:01:52", "2026-07-01T15:01:52+00:00"),
        ("Fri, 10 Jul 2026 22:45:30 +0000", "2026-07-10T22:45:30+00:00"),  # RSS
        ("Thu, 13 Oct 2022 18:10:18 -0200", "2022-10-13T20:10:18+00:00"),
        ("2026-07-10", "2026-07-10T00:00:00+00:00"),
    ],
)
def test_iso_utc_reads_every_date_shape_the_boards_send(value, expected):
    assert iso_utc(value) == expected


@pytest.mark.parametrize("value", [None, "", "   ", "soon", 0, -5, True, float("nan"), float("inf"), [], {}, "99999-99-99", 10**30])
def test_iso_utc_gives_none_for_unknown_or_garbage(value):
    assert iso_utc(value) is None


def test_clean_text_unescapes_entities_and_trims():
    assert clean_text("Manager Site Reliability &amp; DevOps") == "Manager Site Reliability & DevOps"
    assert clean_text("R&amp;amp;D ") == "R&D"
    assert clean_text("Coalition Technologies ") == "Coalition Technologies"
    assert clean_text("AI Research Engineer -  3D\nComputer Vision") == "AI Research Engineer - 3D Computer Vision"
    assert clean_text("bad\x00byte") == "badbyte"
    assert clean_text(None) == "" and clean_text({"a": 1}) == "" and clean_text(True) == ""
    assert clean_text(42) == "42"


def test_description_html_unescapes_greenhouse_content_into_real_html():
    jobs = json.loads((FIXTURES / "greenhouse" / "greenhouse_helsing_trimmed.json").read_text())["jobs"]
    html = description_html(jobs[0]["content"])
    assert html.startswith("<h2><strong>Who we are</strong></h2>")
    assert "&lt;" not in html


def test_description_html_keeps_real_html_that_quotes_an_escaped_tag():
    text = "<p>Write a <code>&lt;div&gt;</code> by hand</p><ul><li>React</li></ul>"
    assert description_html(text) == text


def test_description_html_unescapes_escaped_body_with_a_real_footer():
    data = json.loads((FIXTURES / "arbeitnow" / "arbeitnow_job-board-api_trimmed3.json").read_text())
    html = description_html(data["data"][2]["description"])
    assert html.startswith('<div class="content-intro"><div class="elementToProof">')
    assert html.endswith('<p>Find <a href="https://www.arbeitnow.com">Jobs in Germany</a> on Arbeitnow</a>')


def test_fix_mojibake_repairs_remoteok_descriptions():
    items = json.loads((FIXTURES / "remoteok" / "remoteok_api_2025-08-28.json").read_bytes())
    aragon = next(i for i in items[1:] if i["id"] == "1097929")
    fixed = fix_mojibake(aragon["description"])
    assert "â\x80\x99" in aragon["description"]
    assert "💪 What you’ll do" in fixed
    assert "â\x80" not in fixed


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("transformaÃ§Ã£o", "transformação"),  # UTF-8 read as Latin-1
        ("donâ€™t", "don’t"),  # UTF-8 read as cp1252
        ("ÃƒÂ©", "é"),  # wrongly decoded twice
        ("Â\xa0", "\xa0"),
    ],
)
def test_fix_mojibake_patterns(broken, fixed):
    assert fix_mojibake(broken) == fixed


@pytest.mark.parametrize("clean", ["Möglichkeit während", "café ½ ©2024", "Naïve résumé", "Zürich — ÄÖÜ", "Москва"])
def test_fix_mojibake_leaves_correct_text_alone(clean):
    assert fix_mojibake(clean) == clean


def test_fix_literal_escapes():
    assert fix_literal_escapes("a</p>\\n<p>b") == "a</p>\n<p>b"
    assert fix_literal_escapes("today! \\uD83D\\uDCF8") == "today! 📸"
    assert fix_literal_escapes("caf\\u00e9") == "café"
    assert fix_literal_escapes("lone \\uD83D end") == "lone  end"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((150000, 180000, "USD", "per-year-salary"), "$150k–$180k/year"),
        ((184000, 356500, "USD", "annual"), "$184k–$356.5k/year"),
        ((50, 50, "USD", "hourly"), "$50/hour"),
        ((151000, None, "USD", "yearly"), "$151k+/year"),
        ((None, 90000, "EUR", None), "up to €90k"),
        ((60000, 140000, "USD", None), "$60k–$140k"),
        ((70000, 90000, "CHF", "monthly"), "CHF 70k–90k/month"),
        (("85,000", "95000", "GBP", None), "£85k–£95k"),
        ((2_500_000, None, "JPY", None), "JPY 2.5M+"),
        ((0, 0, "USD", None), ""),
        ((None, None, None, None), ""),
        (("n/a", {}, 5, []), ""),
        ((200000, 100000, "USD", None), "$100k–$200k"),
    ],
)
def test_salary_range(args, expected):
    assert salary_range(*args) == expected


def test_tag_list_cleans_splits_and_dedupes():
    assert tag_list(["Data Science &amp; Analytics", None, 3, "python", "Python"], "a, b,,c") == [
        "Data Science & Analytics",
        "python",
        "a",
        "b",
        "c",
    ]
    assert tag_list(None, {"x": 1}) == []


def test_ids_and_board_names():
    assert as_id(2090903) == "2090903"
    assert as_id(" abc ") == "abc"
    assert as_id(True) is None and as_id("") is None and as_id([1]) is None
    assert prettify_board("acme-robotics") == "Acme Robotics"
    assert prettify_board(None) == ""


def test_with_work_mode():
    assert with_work_mode("Munich", "Remote") == "Munich (Remote)"
    assert with_work_mode("Remote", "Remote") == "Remote"
    assert with_work_mode("Remote, Germany", "Remote") == "Remote, Germany"
    assert with_work_mode("", "Remote") == "Remote"
    assert with_work_mode("New York (Hybrid)", "Hybrid") == "New York (Hybrid)"
    assert with_work_mode("Berlin", "") == "Berlin"


def test_load_json_accepts_bom_and_rejects_non_json_with_a_clear_message():
    raw = (FIXTURES / "remotive" / "remotive_all_2026-07.json").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert load_json(raw, "remotive")["job-count"] == 35
    assert load_json(raw.decode("utf-8"), "remotive")["job-count"] == 35
    with pytest.raises(PayloadError, match=r"remotive: payload is not JSON .*'<!DOCTYPE html>"):
        load_json(b"<!DOCTYPE html><html>Just a moment...</html>", "remotive")
    with pytest.raises(PayloadError, match="empty payload"):
        load_json(b"  ", "remotive")
    with pytest.raises(PayloadError, match="not UTF-8"):
        load_json(b'{"a": "\xff\xfe\xfa"}', "remotive")
    with pytest.raises(PayloadError, match="nested too deeply"):
        load_json("[" * 100000, "remotive")


def test_item_list_names_what_it_found():
    assert item_list([1], "x") == [1]
    assert item_list({"jobs": [2]}, "x") == [2]
    with pytest.raises(PayloadError, match=r"x: expected a list of jobs or an object with 'jobs'; got an object with 'error'"):
        item_list({"error": "rate limited"}, "x")
    with pytest.raises(PayloadError, match="got str"):
        item_list("jobs", "x")


def test_parse_items_skips_bad_items_with_reasons_and_keeps_the_rest():
    def build(item):
        if item.get("reply"):
            return None
        if item["n"] == 3:
            raise RuntimeError("boom")
        return require_id(item, "id")

    result = parse_items("demo", [{"id": 1, "n": 1}, "junk", {"n": 2}, {"id": 4, "n": 3}, {"reply": True}, {"id": 5, "n": 5}], build, start=1)
    assert result.listings == ["1", "5"]
    assert result.skipped == [
        "demo item 2: not an object (str)",
        "demo item 3: missing id",
        "demo item 4: unreadable (RuntimeError: boom)",
    ]


def test_remote_board_location_reads_places_as_restrictions():
    from scraper.normalize import remote_board_location

    assert remote_board_location("") == "Remote"
    assert remote_board_location("Brazil") == "Remote (Brazil)"
    assert remote_board_location("Worldwide") == "Worldwide"
    assert remote_board_location("Remote - Europe") == "Remote - Europe"
