"""``storyloop testimonials pull``: each received testimonial as a Markdown file plus its photos
in ``content/``, on a new git branch with one commit per testimonial, for an editor to read,
edit and merge (the merge is the approval; nothing is published before it).

The branch is made in a temporary ``git worktree`` so the editor's own checkout is not touched.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from publisher.customers.records import Received
from publisher.errors import StoryloopError
from publisher.shop.stores import Store


class GitError(StoryloopError):
    """git is missing, content/ is not in a repository, or a git command failed."""


@dataclass(frozen=True)
class Pulled:
    invite: str
    path: str  # the Markdown file, relative to the repository


def git(repo: Path, *args: str) -> str:
    env = dict(os.environ)
    env.setdefault("GIT_AUTHOR_NAME", "Storyloop")
    env.setdefault("GIT_AUTHOR_EMAIL", "storyloop@localhost")
    env.setdefault("GIT_COMMITTER_NAME", env["GIT_AUTHOR_NAME"])
    env.setdefault("GIT_COMMITTER_EMAIL", env["GIT_AUTHOR_EMAIL"])
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=120
        )
    except FileNotFoundError as exc:
        raise GitError("git is not installed", hint="apt-get install git") from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise GitError(f"git {args[0]}: {last}")
    return done.stdout.strip()


def repository_of(content: Path) -> Path:
    """The git repository ``content`` is in; a clear error when it is in none."""
    if not content.is_dir():
        raise GitError(f"{content}: no such folder (the site's PATH setting)")
    try:
        top = git(content, "rev-parse", "--show-toplevel")
    except GitError as exc:
        raise GitError(
            f"{content} is not in a git repository: testimonials are approved as git commits",
            hint=f"git init {content.parent} and commit the site first",
        ) from exc
    return Path(top)


def slug_for(item: Received) -> str:
    name = re.sub(r"[^a-z0-9]+", "-", item.display_name.lower()).strip("-")[:30] or "customer"
    return f"{item.store}-{item.visited_on.isoformat()}-{name}-{item.invite[:6]}"


def _title(text: str) -> str:
    first = re.split(r"(?<=[.!?。！？])\s*", " ".join(text.split()), maxsplit=1)[0]
    return first if len(first) <= 80 else first[:77].rstrip() + "..."


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _body(text: str) -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n\n".join(p.strip() for p in re.split(r"\n\s*\n", escaped.strip()) if p.strip())


def markdown(item: Received, store: Store | None, slug: str, images: list[str]) -> str:
    """The testimonial as the content model reads it (``storyloop check`` knows every field)."""
    store_name = store.name if store else item.store
    lines = [
        f"Title: {_quote(_title(item.text))}",
        f"Date: {item.submitted_at:%Y-%m-%d %H:%M}",
        f"Slug: {slug}",
        f"Lang: {item.lang}",
        "Category: testimonials",
    ]
    if store and store.region:
        lines.append(f"Region: {store.region}")
    lines += [
        f"Customer: {item.display_name}",
        f"Rating: {item.rating}",
        f"Store: {item.store}",
        "Consent: yes",
    ]
    if item.consent_until:
        lines.append(f"Consent-Until: {item.consent_until.isoformat()}")
    lines += [
        f"Consent-Scope: {item.consent_scope}",
        f"Consent-Version: {item.consent_version}",
        f"Verified: {item.store} {item.visited_on.isoformat()}",
    ]
    if images:
        lines += [f"Image: {images[0]}", f"Image-Alt: Photo by {item.display_name} ({store_name})"]
    body = _body(item.text)
    extra = "".join(
        f"\n\n![Photo by {item.display_name}]({{static}}/{path})" for path in images[1:]
    )
    return "\n".join(lines) + "\n\n" + body + extra + "\n"


def pull(
    content: Path,
    photo_root: Path,
    received: list[Received],
    stores: dict[str, Store],
    now: datetime,
    today: date,
) -> tuple[str, list[Pulled]]:
    """Write each new testimonial on a fresh branch; (branch, what was written)."""
    repo = repository_of(content)
    waiting = [
        r
        for r in received
        if r.pulled_at is None and (r.consent_until is None or r.consent_until >= today)
    ]
    branch = f"testimonials/{now:%Y-%m-%d-%H%M%S}"
    if not waiting:
        return branch, []
    relative = content.resolve().relative_to(repo.resolve())
    git(repo, "rev-parse", "--verify", "HEAD")
    done: list[Pulled] = []
    with tempfile.TemporaryDirectory(prefix="storyloop-pull-") as tmp:
        tree = Path(tmp) / "tree"
        git(repo, "worktree", "add", "--quiet", "-b", branch, str(tree), "HEAD")
        try:
            for item in waiting:
                slug = slug_for(item)
                target = tree / relative
                images: list[str] = []
                for number, photo in enumerate(item.photos, 1):
                    image = f"images/testimonials/{slug}-{number}.jpg"
                    (target / image).parent.mkdir(parents=True, exist_ok=True)
                    (target / image).write_bytes((photo_root / photo).read_bytes())
                    images.append(image)
                page = target / "testimonials" / f"{slug}.md"
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(markdown(item, stores.get(item.store), slug, images), "utf-8")
                paths = [str(page.relative_to(tree))]
                paths += [str((target / i).relative_to(tree)) for i in images]
                git(tree, "add", "--", *paths)
                message = (
                    f"Testimonial from {item.display_name} ({item.store}, visit on "
                    f"{item.visited_on.isoformat()}), {item.rating}/5\n\n"
                    f"Submitted {item.submitted_at.isoformat()} through a till invitation.\n"
                    f"Consent: {item.consent_scope}, until "
                    f"{item.consent_until.isoformat() if item.consent_until else 'withdrawn'} "
                    f"(consent text version {item.consent_version})."
                )
                git(tree, "commit", "--quiet", "-m", message)
                done.append(Pulled(item.invite, paths[0]))
        finally:
            git(repo, "worktree", "remove", "--force", str(tree))
    return branch, done
