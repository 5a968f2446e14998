"""Build cost: Storyloop's site (theme + plugin + manifest) against plain Pelican, same corpus.

    .venv/bin/python benchmarks/build.py [--stories 1000[,4000,16000]] [--runs 1]

For each size, generates N stories (Chinese and English, with images, offers, variants,
channels), then per run: a cold build with plain Pelican (default theme, no plugin), a cold
build with Storyloop, and a warm Storyloop rebuild after editing one story with Pelican's
content cache on. Each build is one ``pelican`` process, reaped with ``wait4``, so its CPU time
(user + system) counts every process of the build that was waited for: the QR child included.
Its peak memory is the largest ``ru_maxrss`` among them (the peak of the largest process, not a
sum: the build's own process, as the manifest is no longer written by a forked copy of it).
Goals: cold CPU <= 1.15x plain Pelican's, peak memory <= 1.5x; warm <= 0.3x cold, wall and CPU.

    .venv/bin/python benchmarks/build.py --instructions --stories 200,500

counts instead the instructions each build runs, every process of it, under valgrind's
callgrind (one build of each kind a size, about 50 times slower than a build). On a shared host
CPU time moves by 15 % from one build to the next; an instruction count does not move at all,
so it shows a change of 1 % that timed runs cannot. It leaves out what the kernel does (creating
the output's files) and what memory stalls cost. With two sizes or more it also gives the
instructions each added story costs, the ratio a build tends to as it grows.
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
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
        # Pelican keeps whole articles in its cache, not only what its readers returned
        text += 'CONTENT_CACHING_LAYER = "generator"\n'
    conf.write_text(text, encoding="utf-8")
    return conf


@dataclass(frozen=True)
class Cost:
    wall: float  # seconds
    cpu: float  # seconds, user + system, the build's processes together
    rss: float  # MB, the largest process's peak


# Python's compiled modules are used as an installed copy uses them: a shell that sets
# PYTHONDONTWRITEBYTECODE (this host's does) would make every build compile the project's
# modules from source again, about 0.2 s of CPU a process that no installed site pays
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def build(conf: Path, out: str) -> Cost:
    start = time.perf_counter()
    with open(WORK / "build.log", "w+b") as log:
        child = subprocess.Popen(
            [str(PELICAN), "content", "-s", str(conf), "-o", out, "-q"],
            cwd=WORK,
            env=ENV,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _pid, status, usage = os.wait4(child.pid, 0)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            log.seek(0)
            sys.exit(f"build failed ({conf.name}):\n{log.read().decode(errors='replace')}")
    return Cost(elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def instructions(conf: Path, out: str) -> float:
    """The instructions one build runs, all its processes together (callgrind's totals)."""
    counts = WORK / "callgrind"
    shutil.rmtree(counts, ignore_errors=True)
    counts.mkdir()
    command = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-instr=no"]
    command += [f"--callgrind-out-file={counts}/%p", str(PELICAN), "content", "-s", str(conf)]
    env = ENV | {"PYTHONHASHSEED": "0"}  # the same sets' orders, so the same count every run
    done = subprocess.run([*command, "-o", out, "-q"], cwd=WORK, env=env, capture_output=True)
    if done.returncode:
        sys.exit(f"build failed under callgrind ({conf.name}):\n{done.stderr.decode()[-3000:]}")
    total = 0
    for path in counts.iterdir():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total / 1e9


def count_size(n: int) -> dict[str, float]:
    content = make_corpus(n)
    row: dict[str, float] = {"n": n}
    for name, storyloop in (("plain", False), ("storyloop", True)):
        shutil.rmtree(WORK / f"cache-{name}", ignore_errors=True)
        conf = write_conf(f"{name}_cold", name, storyloop=storyloop, warm=False)
        row[name] = instructions(conf, f"out-{name}")
    edited = content / "stories" / "story-3.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nEdited.\n", "utf-8")
    warm = write_conf("storyloop_warm", "storyloop", storyloop=True, warm=True)
    row["warm"] = instructions(warm, "out-storyloop")
    print(
        f"stories: {n:,}  instructions (G): plain {row['plain']:.3f} | Storyloop cold "
        f"{row['storyloop']:.3f} | warm {row['warm']:.3f}   cold/plain "
        f"{row['storyloop'] / row['plain']:.3f}x   warm/cold {row['warm'] / row['storyloop']:.3f}x",
        flush=True,
    )
    return row


def count(sizes: list[int]) -> None:
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (Debian: apt-get install valgrind)")
    rows = [count_size(n) for n in sizes]
    for small, large in itertools.pairwise(rows):
        stories = large["n"] - small["n"]
        plain = (large["plain"] - small["plain"]) * 1e3 / stories
        cold = (large["storyloop"] - small["storyloop"]) * 1e3 / stories
        print(
            f"each story added from {small['n']:,} to {large['n']:,}: plain {plain:.2f} M "
            f"instructions, Storyloop {cold:.2f} M: {cold / plain:.3f}x"
        )


def ratio(a: list[Cost], b: list[Cost], what: str) -> float:
    """The median of the per-run ratios b / a: each run's builds follow one another within
    seconds, so their ratio is what the machine's drifting load disturbs least."""
    return statistics.median(getattr(y, what) / getattr(x, what) for x, y in zip(a, b, strict=True))


def one_size(n: int, runs: int) -> dict[str, float]:
    content = make_corpus(n)
    plain_conf = write_conf("plain", "plain", storyloop=False, warm=False)
    cold_conf = write_conf("storyloop_cold", "storyloop", storyloop=True, warm=False)
    warm_conf = write_conf("storyloop_warm", "storyloop", storyloop=True, warm=True)
    plain: list[Cost] = []
    cold: list[Cost] = []
    warm: list[Cost] = []

    def cold_build(conf: Path, name: str) -> Cost:
        # each cold build right after its own clean-up: deleting a few thousand files makes the
        # next file creations on ext4 slower (inode allocation skips recently freed inodes), and
        # that must weigh on both builds alike
        shutil.rmtree(WORK / f"cache-{name}", ignore_errors=True)
        shutil.rmtree(WORK / f"out-{name}", ignore_errors=True)
        return build(conf, f"out-{name}")

    for run in range(runs):
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
    manifest = WORK / "out-storyloop" / "storyloop-manifest.json"
    print(
        f"stories: {n:,}  runs: {runs}  manifest: {manifest.stat().st_size:,} bytes  "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print("  per run, wall / CPU / peak RSS:  plain | Storyloop cold | Storyloop warm")
    for row in zip(plain, cold, warm, strict=True):
        print(
            "    "
            + " | ".join(f"{c.wall:.2f} s / {c.cpu:.2f} s / {c.rss:.0f} MB" for c in row)
            + f"   cold/plain CPU {row[1].cpu / row[0].cpu:.2f}x"
            + f"   warm/cold wall {row[2].wall / row[1].wall:.2f}x"
            + f" CPU {row[2].cpu / row[1].cpu:.2f}x"
        )
    out = {"n": n, "load": os.getloadavg()[0]}
    for name, costs in (("plain", plain), ("cold", cold), ("warm", warm)):
        for what in ("wall", "cpu", "rss"):
            out[f"{name}_{what}"] = statistics.median(getattr(c, what) for c in costs)
    for what in ("wall", "cpu", "rss"):
        out[f"cold_plain_{what}"] = ratio(plain, cold, what)
        out[f"warm_cold_{what}"] = ratio(cold, warm, what)
    print(
        f"  medians: plain {out['plain_wall']:.2f} s wall, {out['plain_cpu']:.2f} s CPU, "
        f"{out['plain_rss']:.0f} MB; Storyloop cold {out['cold_wall']:.2f} s, "
        f"{out['cold_cpu']:.2f} s, {out['cold_rss']:.0f} MB; warm {out['warm_wall']:.2f} s, "
        f"{out['warm_cpu']:.2f} s"
    )
    print(
        f"  cold / plain (median of runs): CPU {out['cold_plain_cpu']:.2f}x (goal <= 1.15x), "
        f"peak memory {out['cold_plain_rss']:.2f}x (goal <= 1.5x), "
        f"wall {out['cold_plain_wall']:.2f}x"
    )
    print(
        f"  warm / cold (median of runs): wall {out['warm_cold_wall']:.2f}x, "
        f"CPU {out['warm_cold_cpu']:.2f}x (goal <= 0.3x both)",
        flush=True,
    )
    return out


def main() -> None:
    global WORK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", default="1000", help="one size or several: 1000,4000,16000")
    parser.add_argument("--runs", type=int, default=1, help="repeat and take the median")
    parser.add_argument("--work", type=Path, default=WORK, help="where the corpus and builds go")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions under callgrind instead"
    )
    args = parser.parse_args()
    WORK = args.work.resolve()
    if args.instructions:
        for folder in ("publisher", "channels"):
            compileall.compile_dir(ROOT / folder, quiet=1)
        count([int(n) for n in args.stories.split(",")])
        return
    print(f"load average {os.getloadavg()[0]:.1f}")
    for folder in ("publisher", "channels"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    rows = [one_size(int(n), args.runs) for n in args.stories.split(",")]
    if len(rows) > 1:
        print()
        head = "stories", "plain wall / CPU / RSS", "Storyloop cold", "warm", "cold/plain CPU"
        head += "RSS", "warm/cold wall / CPU"
        print("| " + " | ".join(head) + " |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['n']:,} "
                f"| {r['plain_wall']:.1f} s / {r['plain_cpu']:.1f} s / {r['plain_rss']:.0f} MB "
                f"| {r['cold_wall']:.1f} s / {r['cold_cpu']:.1f} s / {r['cold_rss']:.0f} MB "
                f"| {r['warm_wall']:.1f} s / {r['warm_cpu']:.1f} s "
                f"| {r['cold_plain_cpu']:.2f}x | {r['cold_plain_rss']:.2f}x "
                f"| {r['warm_cold_wall']:.2f}x / {r['warm_cold_cpu']:.2f}x |"
            )


if __name__ == "__main__":
    main()
