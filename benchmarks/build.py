"""Build speed: Storyloop's site (theme + plugin + manifest) against plain Pelican, same corpus.

    .venv/bin/python benchmarks/build.py [--stories 1000] [--runs 1]

Generates N stories (Chinese and English, with images, offers, variants, channels), then in the
same run: a cold build with plain Pelican (default theme, no plugin), a cold build with Storyloop,
and a warm Storyloop rebuild after editing one story with Pelican's content cache on.
Goals: cold <= 1.15x plain Pelican; warm <= 0.5x cold.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work" / "build"
PELICAN = Path(sys.executable).with_name("pelican")

ZH = "老房子的厨房在六周里焕然一新，我们保留了原来的水磨石地面，换上了防潮的橡木柜。"
EN = "We kept the terrazzo floor, replaced the cabinets with moisture-proof oak and moved the sink."

COMMON = """
SITENAME = "Bench"
SITEURL = "http://127.0.0.1:8000"
PATH = "content"
TIMEZONE = "Asia/Shanghai"
DEFAULT_LANG = "zh"
ARTICLE_PATHS = ["stories"]
STATIC_PATHS = ["images"]
DEFAULT_PAGINATION = 12
CACHE_PATH = {cache!r}
LOAD_CONTENT_CACHE = {warm}
CACHE_CONTENT = True
"""


def story(i: int, rng: random.Random) -> str:
    zh = i % 2 == 0
    paragraphs = "\n\n".join((ZH if zh else EN) * rng.randint(2, 5) for _ in range(6))
    return f"""Title: {"厨房焕新" if zh else "A kitchen renewed"} {i}
Date: 2026-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00
Slug: story-{i}
Lang: {"zh" if zh else "en"}
Category: stories
Region: {"xiamen" if zh else "berlin"}
Channels: mastodon, telegram, weibo
Publish: 2026-{1 + i % 12:02d}-{1 + i % 28:02d} 09:30 {"Asia/Shanghai" if zh else "Europe/Berlin"}
Headline-A: Headline A {i}
Headline-B: Headline B {i}
Offer: 10% off hardware {i}
Store: xiamen-1
Image: images/p{i % 10}.jpg
Image-Alt: A kitchen, photo {i % 10}
Summary: {"六周焕新的厨房" if zh else "Six weeks, one kitchen"} {i}

{paragraphs}

See [the shop](https://example.com/shop?item={i}) and [a friend](https://example.org/{i}).
"""


def make_corpus(n: int) -> Path:
    from PIL import Image

    shutil.rmtree(WORK, ignore_errors=True)
    content = WORK / "content"
    (content / "stories").mkdir(parents=True)
    (content / "images").mkdir()
    for k in range(10):
        Image.new("RGB", (800, 533), (40 * k % 255, 120, 90)).save(content / f"images/p{k}.jpg")
    rng = random.Random(7)
    for i in range(n):
        (content / "stories" / f"story-{i}.md").write_text(story(i, rng), encoding="utf-8")
    return content


def write_conf(name: str, cache: str, storyloop: bool, warm: bool) -> Path:
    conf = WORK / f"{name}.py"
    text = COMMON.format(cache=str(WORK / f"cache-{cache}"), warm=warm)
    if storyloop:
        own = (ROOT / "pelicanconf.py").read_text(encoding="utf-8")
        text = own + text + f"THEME = {str(ROOT / 'themes/storyloop')!r}\n"
    conf.write_text(text, encoding="utf-8")
    return conf


def build(conf: Path, out: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [str(PELICAN), "content", "-s", str(conf), "-o", out, "-q"],
        cwd=WORK,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"build failed ({conf.name}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1, help="repeat and take the median")
    args = parser.parse_args()
    content = make_corpus(args.stories)
    plain_conf = write_conf("plain", "plain", storyloop=False, warm=False)
    cold_conf = write_conf("storyloop_cold", "storyloop", storyloop=True, warm=False)
    warm_conf = write_conf("storyloop_warm", "storyloop", storyloop=True, warm=True)
    plain, cold, warm = [], [], []

    def cold_build(conf: Path, name: str) -> float:
        # each cold build right after its own clean-up: deleting a few thousand files makes the
        # next file creations on ext4 slower (inode allocation skips recently freed inodes), and
        # that must weigh on both builds alike
        shutil.rmtree(WORK / f"cache-{name}", ignore_errors=True)
        shutil.rmtree(WORK / f"out-{name}", ignore_errors=True)
        return build(conf, f"out-{name}")

    for run in range(args.runs):
        # alternate which goes first, so a load that drifts during a run favours neither
        if run % 2:
            cold.append(cold_build(cold_conf, "storyloop"))
            plain.append(cold_build(plain_conf, "plain"))
        else:
            plain.append(cold_build(plain_conf, "plain"))
            cold.append(cold_build(cold_conf, "storyloop"))
        edited = content / "stories" / "story-3.md"
        edited.write_text(edited.read_text(encoding="utf-8") + f"\nEdited {run}.\n", "utf-8")
        warm.append(build(warm_conf, "out-storyloop"))
    p, c, w = (statistics.median(x) for x in (plain, cold, warm))
    # Each run's builds follow one another within seconds, so their ratio is what the machine's
    # drifting load disturbs least: the goals are judged on the median of the per-run ratios.
    cold_ratio = statistics.median(b / a for a, b in zip(plain, cold, strict=True))
    warm_ratio = statistics.median(b / a for a, b in zip(cold, warm, strict=True))
    manifest = WORK / "out-storyloop" / "storyloop-manifest.json"
    print(f"stories: {args.stories}  runs: {args.runs}  manifest: {manifest.stat().st_size} bytes")
    print("per run (plain / cold / warm, s):")
    for row in zip(plain, cold, warm, strict=True):
        print(
            "  "
            + " / ".join(f"{t:.2f}" for t in row)
            + f"   cold/plain {row[1] / row[0]:.2f}x   warm/cold {row[2] / row[1]:.2f}x"
        )
    print(f"plain Pelican cold build:   {p:7.2f} s (median)")
    print(f"Storyloop cold build:       {c:7.2f} s (median)")
    print(f"Storyloop warm rebuild:     {w:7.2f} s (median)")
    print(f"cold / plain, median of runs: {cold_ratio:.2f}x (goal <= 1.15x)")
    print(f"warm / cold, median of runs:  {warm_ratio:.2f}x (goal <= 0.50x)")


if __name__ == "__main__":
    main()
