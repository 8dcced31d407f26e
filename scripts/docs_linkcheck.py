#!/usr/bin/env python3
"""Checks every link of the built documentation site as plain files (file://, no server).

    python3 scripts/docs_linkcheck.py target/docs/html

- Internal links (href/src without a scheme): the file must exist inside the site, and a
  `#fragment` must be an id (or a name) in that file. Absolute paths (`/x.html`) are errors:
  they break when the site is opened from the disk.
- External links (http, https): this machine reaches no web server, so they are checked for
  shape only (a scheme, a host name with a dot, no spaces), and listed with --external.
- Any other scheme but mailto is an error.

Exits 1 when any link is broken, printing each as FILE: LINK: why.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Set, Tuple
from urllib.parse import unquote, urlsplit

LINK_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src",
              "object": "data", "embed": "src", "source": "src"}


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: Set[str] = set()
        self.links: List[str] = []

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])  # type: ignore[arg-type]
        want = LINK_ATTRS.get(tag)
        if want and a.get(want) is not None:
            if tag == "link" and a.get("rel") in ("preconnect", "dns-prefetch"):
                return
            self.links.append(a[want])  # type: ignore[arg-type]


def main(argv: List[str]) -> int:
    show_external = "--external" in argv
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(args[0]).resolve()
    pages: Dict[Path, Page] = {}
    for path in sorted(root.rglob("*.html")):
        p = Page()
        p.feed(path.read_text(encoding="utf-8"))
        pages[path] = p
    if not pages:
        print(f"linkcheck: no HTML under {root}", file=sys.stderr)
        return 1
    broken: List[str] = []
    external: Set[str] = set()
    internal = 0
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            where = f"{path.relative_to(root)}: {link}"
            if parts.scheme in ("http", "https"):
                host = parts.hostname or ""
                if "." not in host or " " in link:
                    broken.append(f"{where}: malformed external URL")
                external.add(link)
                continue
            if parts.scheme == "mailto":
                continue
            if parts.scheme or parts.netloc:
                broken.append(f"{where}: scheme {parts.scheme!r} does not work from files")
                continue
            if parts.path.startswith("/"):
                broken.append(f"{where}: absolute path breaks when opened as a file")
                continue
            internal += 1
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if root not in target.parents and target != root:
                broken.append(f"{where}: points outside the site")
                continue
            if target.is_dir():
                broken.append(f"{where}: a directory (no server to serve index.html)")
                continue
            if not target.exists():
                broken.append(f"{where}: no such file")
                continue
            frag = unquote(parts.fragment)
            if frag and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if frag not in ids:
                    broken.append(f"{where}: no id {frag!r} in {target.relative_to(root)}")
    for b in broken:
        print(f"linkcheck: {b}", file=sys.stderr)
    print(
        f"linkcheck: {len(pages)} pages, {internal} internal links and anchors checked, "
        f"{len(external)} external URLs checked for shape only, {len(broken)} broken"
    )
    if show_external:
        for url in sorted(external):
            print(f"  {url}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
