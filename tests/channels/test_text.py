"""Counting the way each network counts, and truncation that keeps what must survive."""

from __future__ import annotations

from channels.text import (
    auto_summary,
    bcp47,
    count_graphemes,
    count_hanzi,
    count_mastodon,
    count_utf16,
    count_weibo,
    count_weighted,
    find_urls,
    graphemes,
    one_line,
    plain,
    rewrite_html_links,
    rewrite_urls,
    rule_counter,
    standard_text,
    truncate,
)
from tests.channels.storybook import make_story

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


def test_a_url_glued_to_chinese_ends_where_the_chinese_starts_and_is_rewritten() -> None:
    text = "看这里https://example.com/x.html了解更多细节"
    assert [text[s:e] for s, e in find_urls(text)] == ["https://example.com/x.html"]
    links = {"https://example.com/x.html": "https://t.example/go/abc"}
    assert rewrite_urls(text, links) == "看这里https://t.example/go/abc 了解更多细节"


def test_balanced_parentheses_stay_and_trailing_punctuation_goes() -> None:
    cases = {
        "see https://de.wikipedia.org/wiki/Altbau_(Berlin).": "https://de.wikipedia.org/wiki/Altbau_(Berlin)",
        "（https://a.example/x）": "https://a.example/x",
        "(https://a.example/x)": "https://a.example/x",
        "https://a.example/x！好": "https://a.example/x",
        "https://a.example/x…": "https://a.example/x",
        "http://127.0.0.1:8000/stories/x.html了解": "http://127.0.0.1:8000/stories/x.html",
        "https://例子.cn/路径": "https://例子.cn/",  # as twitter-text: a path ends at CJK
    }
    for text, url in cases.items():
        assert [text[s:e] for s, e in find_urls(text)] == [url], text


def test_an_ellipsis_is_never_glued_to_a_url() -> None:
    text = "Look https://t.cedarandclay.com/go/abc and then many more words after it"
    cut = truncate(text, 41, len)
    assert cut == "Look https://t.cedarandclay.com/go/abc …"
    assert [cut[s:e] for s, e in find_urls(cut)] == ["https://t.cedarandclay.com/go/abc"]


def test_mastodon_counts_a_remote_mention_as_its_local_part() -> None:
    assert count_mastodon("hi @bob@mastodon.social") == len("hi @bob")
    assert count_mastodon("hi @bob") == len("hi @bob")
    assert count_mastodon("mail bob@example.com") == len("mail bob@example.com")


def test_weibo_counts_halves_of_utf16_units_and_links_at_least_their_fixed_cost() -> None:
    assert count_weibo("汉字") == 2
    assert count_weibo("abc") == 2
    assert count_weibo("😂") == 2  # two UTF-16 units, each wide
    short = "https://a.cn/x"  # 14 halves: the composer's fixed 20 applies
    assert count_weibo(short) == 10 and count_weibo(short, fixed_links=True) == 10
    long = "https://t.cedarandclay.example/go/Ab3dE5gH7j"  # 44 halves
    assert count_weibo(long) == 22 and count_weibo(long, fixed_links=True) == 10


def test_markdown_in_titles_and_summaries_is_posted_as_text() -> None:
    assert plain("**Bold** &amp; [the offer](https://a.example/o)") == (
        "Bold & the offer https://a.example/o"
    )
    assert plain("“引号”**粗体**中文") == "“引号”粗体中文"
    assert plain("Tiles <restored> <b>now</b>") == "Tiles <restored> now"
    story = make_story(title="**Light** &amp; air", summary="See [this](https://a.example/x).")
    links = {story.url: "https://t.example/go/s", "https://a.example/x": "https://t.example/go/x"}
    text = standard_text(story, None, links, None, 500, len)
    assert text.startswith("Light & air\n\nSee this https://t.example/go/x.")


def test_a_missing_summary_is_cut_from_the_first_paragraphs_never_a_heading() -> None:
    markup = "<h2>Heading first</h2><p>" + "林女士想要光。我们拆掉了两面墙，" * 30 + "</p>"
    summary = auto_summary(markup)
    assert not summary.startswith("Heading")
    assert summary.endswith("…") and count_graphemes(summary) <= 280
    assert summary[:-1].endswith(("。", "，")) or summary[:-1][-1] in markup
    assert auto_summary("<p>Short one.</p>") == "Short one."


def test_language_tags_are_bcp_47() -> None:
    assert bcp47("zh_CN") == "zh-CN"
    assert bcp47("zh_hant_tw") == "zh-Hant-TW"
    assert bcp47("EN") == "en"


def test_a_title_becomes_one_line() -> None:
    assert one_line("a\r\nb\u2028c\u2029d\x85e") == "a b c d e"


def test_a_url_never_ends_inside_a_grapheme_cluster() -> None:
    text = "x https://a.example/glued.html1️⃣厦门"  # twitter-text's path takes the keycap's 1
    assert [text[s:e] for s, e in find_urls(text)] == ["https://a.example/glued.html"]
    rewritten = rewrite_urls(text, {"https://a.example/glued.html": "https://t.example/go/g"})
    assert rewritten == "x https://t.example/go/g 1️⃣厦门"


def test_a_link_in_the_offer_is_tracked_and_the_code_stays_last() -> None:
    story = make_story(offer="Book at https://shop.example.com/book now")
    links = {
        story.url: "https://t.example/go/s",
        "https://shop.example.com/book": "https://t.example/go/b",
    }
    text = standard_text(story, None, links, "XM-7K2Q", 500, len)
    assert "Book at https://t.example/go/b now · Code: XM-7K2Q" in text
