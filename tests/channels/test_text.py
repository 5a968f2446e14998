"""Counting the way each network counts, and truncation that keeps what must survive."""

from __future__ import annotations

from storybook import make_story

from channels.text import (
    count_graphemes,
    count_hanzi,
    count_utf16,
    count_weighted,
    find_urls,
    graphemes,
    rewrite_html_links,
    rewrite_urls,
    rule_counter,
    standard_text,
    truncate,
)

FAMILY = "👩‍👩‍👧‍👦"
URL = "https://t.cedarandclay.com/go/" + "x" * 80
UNKNOWN_TLD_URL = "https://t.cedarandclay.example/go/abc"


def test_a_zwj_family_is_one_grapheme() -> None:
    assert count_graphemes(FAMILY) == 1
    assert count_graphemes("🇨🇳🏳️‍🌈") == 2


def test_mastodon_counts_every_url_as_23() -> None:
    assert count_graphemes(f"see {URL}", url_weight=23) == 4 + 23


def test_x_weighs_latin_1_and_cjk_2_and_urls_23() -> None:
    assert count_weighted("a" * 280) == 280
    assert count_weighted("汉" * 140) == 280
    assert count_weighted(f"hi {URL}") == 3 + 23
    assert count_weighted("—“quoted”") == 9  # general punctuation weighs 1


def test_x_counts_after_nfc_and_an_emoji_sequence_as_two() -> None:
    assert count_weighted("e\u0301") == 1
    assert count_weighted(FAMILY) == 2


def test_weibo_counts_two_ascii_as_one_hanzi() -> None:
    assert count_hanzi("汉字") == 2
    assert count_hanzi("ab") == 1
    assert count_hanzi("abc") == 2
    assert count_hanzi("汉a") == 2


def test_telegram_counts_utf16_units() -> None:
    assert count_utf16("😂") == 2
    assert count_utf16("abc") == 3


def test_bluesky_counter_folds_in_the_byte_cap() -> None:
    count = rule_counter("graphemes", None, 300, 3000)
    assert count(FAMILY * 150) > 300  # 150 graphemes but 3,750 bytes
    assert count("a" * 300) == 300


def test_truncation_prefers_a_sentence_end() -> None:
    text = "First sentence here. Second one is longer and goes on and on and on."
    assert truncate(text, 40, len) == "First sentence here.…"


def test_truncation_falls_back_to_a_word_boundary() -> None:
    text = "word " * 30
    cut = truncate(text, 22, len)
    assert cut == "word word word word…"


def test_truncation_breaks_cjk_after_punctuation_or_between_characters() -> None:
    text = "林女士想要光，我们拆掉了两面墙，保留了老花砖" * 5
    cut = truncate(text, 20, len)
    assert cut.endswith("…")
    assert len(cut) <= 20
    assert cut[:-1] in text


def test_truncation_never_splits_a_grapheme_cluster() -> None:
    text = FAMILY * 50
    cut = truncate(text, 11, count_graphemes)
    assert cut == FAMILY * 10 + "…"
    assert all(c in (FAMILY, "…") for c in graphemes(cut))


def test_truncation_never_cuts_inside_a_url() -> None:
    text = f"Look {URL} and more words after it"
    cut = truncate(text, 60, len)
    assert URL not in cut or cut.startswith(f"Look {URL}")
    assert "https://t.ceda" not in cut or URL in cut


def test_short_text_is_left_alone() -> None:
    assert truncate("short", 10, len) == "short"


def test_offer_code_and_link_survive_a_long_offer_and_body() -> None:
    story = make_story(summary="Long body. " * 100, offer="A very generous offer " * 20)
    links = {story.url: "https://t.example/go/abc"}
    text = standard_text(story, None, links, "XM-7K2Q", 140, len)
    assert len(text) <= 140
    assert text.endswith("https://t.example/go/abc")
    assert "XM-7K2Q" in text


def test_override_text_is_used_and_its_links_are_tracked() -> None:
    story = make_story(overrides={"mastodon": f"Our own words. {make_story().url}"})
    links = {story.url: "https://t.example/go/abc"}
    text = standard_text(story, None, links, None, 500, len, story.overrides["mastodon"])
    assert text.startswith("Our own words.")
    assert story.url not in text
    assert text.endswith("https://t.example/go/abc")


def test_urls_are_found_without_trailing_punctuation() -> None:
    text = "See https://a.example/x. And https://b.example/y，好"
    assert [text[s:e] for s, e in find_urls(text)] == ["https://a.example/x", "https://b.example/y"]


def test_rewriting_replaces_known_urls_only() -> None:
    links = {"https://a.example/x": "https://t.example/1"}
    assert rewrite_urls("go https://a.example/x or https://c.example", links) == (
        "go https://t.example/1 or https://c.example"
    )
    html = '<a href="https://a.example/x">x</a> <a class="y" href=\'https://c.example\'>c</a>'
    assert rewrite_html_links(html, links) == (
        '<a href="https://t.example/1">x</a> <a class="y" href=\'https://c.example\'>c</a>'
    )


def test_a_url_twitter_text_does_not_recognise_counts_at_its_own_length() -> None:
    assert count_weighted(f"hi {UNKNOWN_TLD_URL}") == 3 + len(UNKNOWN_TLD_URL)
    assert count_weighted("http://127.0.0.1:8000/stories/x.html") == 36
    assert count_graphemes(f"hi {UNKNOWN_TLD_URL}", url_weight=23) == 3 + len(UNKNOWN_TLD_URL)
