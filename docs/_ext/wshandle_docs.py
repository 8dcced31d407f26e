"""Generates the C reference and the WinHTTP porting tables from include/wshandle.h.

`generate(repo)` is called by conf.py before Sphinx reads any source, and writes:

- docs/c-api/<function>.rst: one page per function (synopsis, description, states allowed,
  thread safety, return value with a table of the codes it names, see also), which the man
  builder also turns into `ws_close(3)` and friends;
- docs/c-api/constants.rst (also `wshandle(3)`) and docs/c-api/index.rst;
- docs/_generated/porting-*.inc: the porting tables, from docs/porting/*.csv, with wshandle's
  names and numbers looked up in the header (an unknown name fails the build).

Both output directories are generated on every build and ignored by git: the header's doc
comments (from the Rust sources) are the only place the C API is described.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

sys.path.insert(0, str(Path(__file__).parent))
from cheader import Header, Item, parse  # noqa: E402

# Words whose meaning picks a sentence for the "States allowed" and "Thread safety" sections.
_STATE_WORDS = re.compile(
    r"WS_STATE_|\bstates?\b|Allowed in|\bbefore (?:any|either|`ws_)|\bafter `ws_connect`|phase",
    re.I,
)
_THREAD_WORDS = re.compile(
    r"thread|one at a time per|concurrent|another sending call|another `ws_|meanwhile", re.I
)
# The order of the reference's index: a connection's life, then the helpers. Functions the
# header adds later are listed after these, in header order.
_READING_ORDER = [
    "ws_open", "ws_set_option", "ws_query_option", "ws_add_request_header", "ws_connect",
    "ws_listen", "ws_accept", "ws_send", "ws_send_batch", "ws_receive", "ws_shutdown", "ws_close",
    "ws_query_close_status", "ws_query_state", "ws_query_response_header", "ws_close_handle",
    "ws_version", "ws_error_name", "ws_last_error_message",
]


def _in_reading_order(functions: List[Item]) -> List[Item]:
    rank = {name: n for n, name in enumerate(_READING_ORDER)}
    return sorted(functions, key=lambda f: rank.get(f.name, len(rank)))


def _synopsis(f: Item) -> str:
    """The prototype, its parameters one per line when it is long."""
    if len(f.signature) <= 80:
        return f.signature + ";"
    head, params = f.signature.split("(", 1)
    pad = " " * (len(head) + 1)
    return head + "(" + (",\n" + pad).join(p.strip() for p in params.split(",")) + ";"
_STD_TYPES = {"uint16_t", "uint32_t", "uint64_t", "size_t", "char", "void"}

# Constant groups for the constants page, by name prefix, in header order within each.
_GROUPS: List[Tuple[str, str, str]] = [
    ("WSHANDLE_VERSION", "Version", "Compare the header's version with `ws_version` at run time."),
    ("WS_BUFFER_", "Buffer types", "The `buffer_type` of `ws_send` and `ws_receive`, WinHTTP's "
     "`WINHTTP_WEB_SOCKET_BUFFER_TYPE` numbers."),
    ("WS_CLOSE_STATUS_", "Close statuses", "RFC 6455 close codes, WinHTTP's "
     "`WINHTTP_WEB_SOCKET_CLOSE_STATUS` names."),
    ("WS_MAX_", "Limits", ""),
    ("WS_STATE_", "States", "What `ws_query_state` reports, .NET's `WebSocketState` numbers."),
    ("WS_OPTION_", "Options", "For `ws_set_option` and `ws_query_option`."),
    ("WS_OK", "Result codes", "What every `ws_error` function returns: Win32/WinHTTP numbers. "
     "`ws_error_name` gives the name, `ws_last_error_message` this thread's detail."),
    ("WS_ERROR_", None, ""),  # continues "Result codes"
    ("WS_CALLBACK_STATUS_", "Completion statuses", "The asynchronous mode's `status` of a "
     "callback or a `ws_completion`, WinHTTP's `WINHTTP_CALLBACK_STATUS_*` numbers."),
    ("WS_OPERATION_", "Operations", "The `operation` of a `ws_async_result`, WinHTTP's "
     "`WINHTTP_WEB_SOCKET_OPERATION` numbers."),
]


class Rst:
    """Markdown-style doc comment text (`code`, *emphasis*) to reStructuredText."""

    def __init__(self, header: Header):
        self.functions = {i.name for i in header.functions}
        self.macros = {i.name for i in header.macros}
        self.types = {i.name for i in header.types}

    def code(self, span: str) -> str:
        if span in self.functions:
            return f":c:func:`{span}`"
        if span in self.macros:
            return f":c:macro:`{span}`"
        if span in self.types:
            return f":c:type:`{span}`"
        return f"``{span}``"

    @staticmethod
    def _plain(text: str) -> str:
        text = text.replace("\\", "\\\\").replace("|", "\\|")
        # *emphasis* stays; any other asterisk is literal.
        parts = re.split(r"(\*[A-Za-z][^*]*[A-Za-z]\*)", text)
        out = []
        for n, p in enumerate(parts):
            out.append(p if n % 2 else p.replace("*", "\\*"))
        text = "".join(out)
        # A word ending in '_' would be a reference; a leading '_' is harmless.
        return re.sub(r"(\w)_(?=\W|$)", r"\1\\_", text)

    def inline(self, text: str) -> str:
        pieces = re.split(r"`([^`]+)`", text)
        out = []
        for n, p in enumerate(pieces):
            out.append(self.code(p) if n % 2 else self._plain(p))
        # An inline markup start must follow whitespace or punctuation: `ws_send`/`ws_receive`
        # has a '/' before the second role, which docutils accepts; ')`' and the like too.
        return "".join(out)


def sentences(paragraph: str) -> List[str]:
    raw = re.split(r"(?<=[.;])\s+(?=[A-Z`*(])", paragraph)
    out: List[str] = []
    for s in raw:
        if out and re.search(r"\b(?:e\.g|i\.e)\.$", out[-1]):
            out[-1] += " " + s
        else:
            out.append(s)
    return out


def _plain_text(text: str) -> str:
    return text.replace("`", "").replace("*", "")


def _write(path: Path, text: str) -> None:
    """Writes only when the content changed, so Sphinx rebuilds only what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


_GENERATED = ".. This page is generated from include/wshandle.h by docs/_ext/wshandle_docs.py."


def _title(text: str, ch: str = "=") -> str:
    return f"{text}\n{ch * len(text)}\n"


def _codes_named(text: str, header: Header) -> List[Item]:
    names = []
    for m in re.finditer(r"\bWS_(?:OK|ERROR_\w+)\b", text):
        if m.group(0) not in names:
            names.append(m.group(0))
    by_name = header.by_name()
    return [by_name[n] for n in names if n in by_name]


def _return_clauses(paragraph: str) -> List[str]:
    """The "Returns A; B when ...; C." paragraph as sentences "Returns B when ..."."""
    out = []
    for clause in re.split(r";\s+", paragraph):
        clause = clause.strip().rstrip(".;")
        if not clause.startswith("Returns "):
            clause = "Returns " + clause
        out.append(clause + ".")
    return out


def function_page(f: Item, header: Header, rst: Rst) -> str:
    returns = [p for p in f.doc if p.startswith("Returns ")]
    description = [p for p in f.doc if not p.startswith("Returns ")]
    all_sentences = [s for p in description for s in sentences(p)]
    all_sentences += [c for p in returns for c in _return_clauses(p)]
    state_s = [s for s in all_sentences if _STATE_WORDS.search(s)]
    thread_s = [s for s in all_sentences if _THREAD_WORDS.search(s)]
    takes_handle = "ws_handle h" in f.signature or "ws_handle listener" in f.signature

    lines = [
        _GENERATED,
        "",
        _title(f.name),
        _title("Synopsis", "-"),
        ".. code-block:: c",
        "",
        "   #include <wshandle.h>",
        "",
        *[f"   {line}" for line in _synopsis(f).splitlines()],
        "",
        "Link with ``-lwshandle``.",
        "",
        _title("Description", "-"),
        f".. c:function:: {f.signature}",
        "",
    ]
    for p in description:
        lines += [f"   {rst.inline(p)}", ""]

    lines.append(_title("States allowed", "-"))
    if state_s:
        lines += [f"- {rst.inline(s)}" for s in state_s] + [""]
    elif takes_handle:
        raise ValueError(f"{f.name}: its doc comment says nothing about the states it allows")
    else:
        lines += ["It takes no connection handle: it may be called at any time.", ""]
    lines.append(_title("Thread safety", "-"))
    lines += [
        "Like every wshandle function it may be called from any thread (see "
        ":ref:`threads`).",
        "",
    ]
    lines += [f"- {rst.inline(s)}" for s in thread_s] + ([""] if thread_s else [])

    lines.append(_title("Return value", "-"))
    if returns:
        for p in returns:
            lines += [rst.inline(p), ""]
        codes = _codes_named(" ".join(returns), header)
        if codes:
            lines += [
                ".. list-table:: The result codes it names",
                "   :header-rows: 1",
                "   :widths: 30 10 60",
                "",
                "   * - code",
                "     - value",
                "     - meaning in general",
            ]
            for c in codes:
                lines += [
                    f"   * - :c:macro:`{c.name}`",
                    f"     - {c.value}",
                    f"     - {rst.inline(' '.join(c.doc))}",
                ]
            lines.append("")
    else:
        lines += [f"A ``{f.returns}``, as the description says.", ""]

    mentioned = []
    for m in re.finditer(r"`(ws_\w+)`", " ".join(f.doc)):
        n = m.group(1)
        if n in rst.functions and n != f.name and n not in mentioned:
            mentioned.append(n)
    if mentioned:
        lines.append(_title("See also", "-"))
        lines += [", ".join(f":c:func:`{n}`" for n in mentioned) + ", :doc:`constants`", ""]
    return "\n".join(lines)


def constants_page(header: Header, rst: Rst) -> str:
    lines = [_GENERATED, "", _title("Types and constants")]
    lines += ["Everything ``include/wshandle.h`` defines besides its functions. The numbers are "
              "part of the ABI: they never change once released.", "", _title("Types", "-")]
    for t in header.types:
        if t.ctype.startswith("struct"):
            lines += [f".. c:struct:: {t.name}", ""]
            lines += [f"   {rst.inline(p)}" + "\n" for p in t.doc]
            lines += ["   ::", "", f"      {t.ctype}", ""]
            continue
        if "(*)" in t.ctype:  # a function pointer: its signature as a literal
            lines += [f".. c:type:: {t.name}", ""]
            lines += [f"   {rst.inline(p)}" + "\n" for p in t.doc]
            lines += ["   ::", "", f"      {t.ctype}", ""]
            continue
        lines += [f".. c:type:: {t.ctype} {t.name}", ""]
        lines += [f"   {rst.inline(p)}" + "\n" for p in t.doc]
    macros = header.macros
    done = set()
    for prefix, title, intro in _GROUPS:
        group = [m for m in macros if m.name.startswith(prefix) and m.name not in done]
        if not group:
            continue
        if title:
            lines.append(_title(title, "-"))
            if intro:
                lines += [rst.inline(intro), ""]
        for m in group:
            done.add(m.name)
            lines += [f".. c:macro:: {m.name}", "", f"   Value: ``{m.value}``.", ""]
            lines += [f"   {rst.inline(p)}" + "\n" for p in m.doc]
    missing = [m.name for m in macros if m.name not in done]
    if missing:
        raise ValueError(f"constants with no group on the constants page: {missing}")
    lines.append(_title("See also", "-"))
    lines += [", ".join(f":c:func:`{f.name}`" for f in header.functions), ""]
    return "\n".join(lines)


def index_page(header: Header, rst: Rst) -> str:
    lines = [
        _GENERATED,
        "",
        _title("C reference"),
        "One page per function of ``include/wshandle.h``, generated from the header's doc",
        "comments (which cbindgen copies from the Rust sources): what the page says is what the",
        "header says. The same pages are the man pages (``man 3 ws_close``; see",
        ":ref:`man-pages`).",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 30 70",
        "",
        "   * - function",
        "     - what it does",
    ]
    for f in _in_reading_order(header.functions):
        lines += [f"   * - :c:func:`{f.name}`", f"     - {rst.inline(f.summary)}"]
    lines += [
        "",
        ".. toctree::",
        "   :hidden:",
        "",
        "   constants",
    ]
    lines += [f"   {f.name}" for f in _in_reading_order(header.functions)]
    lines += ["", "Types, buffer types, close statuses, states, options and result codes:",
              ":doc:`constants` (``man 3 wshandle``).", ""]
    return "\n".join(lines)


# ---- WinHTTP porting tables -----------------------------------------------------------------


def porting_table(csv_path: Path, header: Header, rst: Rst) -> str:
    """A list-table from a CSV of `winhttp,winhttp_value,wshandle,notes`. The wshandle column
    holds names from the header (or text in parentheses when there is no counterpart); their
    numbers come from the header, never from the CSV."""
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    by_name = header.by_name()
    has_values = any(r["winhttp_value"] for r in rows)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: porting",
        f"   :widths: {'27 9 25 9 30' if has_values else '30 27 43'}",
        "",
        "   * - WinHTTP",
    ]
    if has_values:
        lines.append("     - value")
    lines += ["     - wshandle"]
    if has_values:
        lines.append("     - value")
    lines.append("     - what differs")
    for r in rows:
        ours = r["wshandle"].strip()
        values: List[str] = []
        cells = []
        names = [] if not ours or ours.startswith("(") else [n.strip() for n in ours.split("+")]
        for name in names:
            item = by_name.get(name)
            if item is None:
                raise ValueError(f"{csv_path.name}: {name!r} is not in include/wshandle.h")
            cells.append(rst.code(name))
            if item.kind == "macro":
                values.append(item.value)
        ours_cell = ", ".join(cells) if cells else rst.inline(ours.strip("()")) or "—"
        lines.append(f"   * - ``{r['winhttp']}``")
        if has_values:
            lines.append(f"     - {r['winhttp_value'] or '—'}")
        lines.append(f"     - {ours_cell}")
        if has_values:
            theirs = r["winhttp_value"]
            same = (len(values) == 1 and re.fullmatch(r"(0x)?[0-9a-fA-F]+", theirs or "")
                    and int(values[0], 0) == int(theirs, 0))
            lines.append(f"     - {', '.join(values) or '—'}{' (same)' if same else ''}")
        lines.append(f"     - {rst.inline(r['notes'])}")
    return "\n".join(lines) + "\n"


def generate(repo: Path) -> Header:
    header = parse(repo / "include" / "wshandle.h")
    rst = Rst(header)
    out = repo / "docs" / "c-api"
    wanted = {"index.rst", "constants.rst"} | {f"{f.name}.rst" for f in header.functions}
    if out.exists():
        for stale in out.glob("*.rst"):
            if stale.name not in wanted:
                stale.unlink()
    _write(out / "index.rst", index_page(header, rst))
    _write(out / "constants.rst", constants_page(header, rst))
    for f in header.functions:
        _write(out / f"{f.name}.rst", function_page(f, header, rst))
    gen = repo / "docs" / "_generated"
    for csv_path in sorted((repo / "docs" / "porting").glob("*.csv")):
        _write(gen / f"porting-{csv_path.stem}.inc", porting_table(csv_path, header, rst))
    return header


def man_pages(header: Header) -> List[Tuple[str, str, str, List[str], int]]:
    pages = [("c-api/constants", "wshandle", "wshandle types, constants and result codes", [], 3)]
    for f in header.functions:
        pages.append((f"c-api/{f.name}", f.name, _plain_text(f.summary), [], 3))
    return pages


def std_types() -> Iterable[Tuple[str, str]]:
    for t in sorted(_STD_TYPES):
        yield ("c:identifier", t)


# ---- Sphinx hooks ---------------------------------------------------------------------------


def _python_reference_fallback(app, env, node, contnode):
    """The package's docstrings write `recv`, `close_timeout`, `ws_set_option` in single
    backticks (default role py:obj). Resolve such a name as a member of WebSocket or Listener,
    a module-level name, or a C function; what is none of these (keyword arguments such as
    `close_timeout`) is shown as code. Every other missing reference still fails the build."""
    from docutils import nodes
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py" or node.get("reftype") != "obj":
        return None
    target = node["reftarget"]
    py = env.get_domain("py")
    for prefix in ("wshandle.WebSocket.", "wshandle.Listener.", "wshandle."):
        obj = py.objects.get(prefix + target)
        if obj is not None:
            return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode,
                                prefix + target)
    if re.fullmatch(r"ws_\w+", target):
        c = env.get_domain("c")
        ref = c.resolve_xref(env, node["refdoc"], app.builder, "func", target, node, contnode)
        if ref is not None:
            return ref
    if re.fullmatch(r"[a-z_][a-z0-9_]*", target):
        return nodes.literal(target, target)
    return None


_SAMPLE_LANGS = {"c", "cpp", "c++", "python", "py", "python3", "pycon"}
_TEST_FILES = ("tests/*.rs", "python/tests/*.py", "scripts/test*.sh")


def _tests_naming(repo: Path, sample: Path) -> List[str]:
    """The test files that compile or run `sample`: by its file name, or the way the test
    helpers name examples (`build("echo_client")` for c-examples/echo_client.c,
    `load_example("seed_client")` for python/examples/seed_client.py). A header counts as
    compiled by the tests of every example beside it that includes it."""
    if sample.suffix == ".h":
        found: List[str] = []
        for c in sorted((repo / sample.parent).glob("*.c")):
            if f'#include "{sample.name}"' in c.read_text(encoding="utf-8"):
                found += [t for t in _tests_naming(repo, c.relative_to(repo)) if t not in found]
        return found
    stem = re.escape(sample.stem)
    pats = [re.escape(sample.name)]
    if sample.parts[0] == "c-examples":
        pats.append(r"\b(?:build|build_with|start)\(\s*\"" + stem + r"\"")
    if sample.parts[0] == "cpp-examples":  # scripts/test-packaging.sh: `for ex in echo ...`
        pats.append(r"\bfor ex in [^;\n]*\b" + stem + r"\b")
    if sample.parts[:2] == ("python", "examples"):
        pats.append(r"\bload_example\(\s*[\"']" + stem + r"[\"']")
    found = []
    for pattern in _TEST_FILES:
        for t in sorted(repo.glob(pattern)):
            text = t.read_text(encoding="utf-8")
            if any(re.search(p, text) for p in pats):
                found.append(str(t.relative_to(repo)))
    return found


def _check_samples(app, doctree):
    """Every C, C++ or Python sample in the guide must be included from a file that a test
    compiles or runs (`literalinclude`), never typed into a page. The generated C reference's
    prototypes are not samples."""
    from docutils import nodes
    from sphinx.util import logging

    log = logging.getLogger("wshandle_docs")
    repo = Path(app.confdir).parent
    docname = app.env.docname
    found = app.env.__dict__.setdefault("wshandle_samples", {})
    found.pop(docname, None)
    for node in doctree.findall(nodes.literal_block):
        src = node.get("source")
        lang = node.get("language", "")
        if docname.startswith("c-api/"):
            continue
        if not src:
            if lang in _SAMPLE_LANGS:
                log.warning("a %s sample typed into the page: include it from a tested file "
                            "(literalinclude)", lang, location=node)
            continue
        rel = Path(src).resolve().relative_to(repo)
        tests = _tests_naming(repo, rel)
        if not tests:
            log.warning("%s is included but no test under tests/ or python/tests/ names it",
                        rel, location=node)
        found.setdefault(docname, []).append((str(rel), tests))


def _merge_samples(app, env, docnames, other):
    env.__dict__.setdefault("wshandle_samples", {}).update(
        other.__dict__.get("wshandle_samples", {}))


def _purge_samples(app, env, docname):
    env.__dict__.get("wshandle_samples", {}).pop(docname, None)


def _write_samples(app, exception):
    """target/docs/<builder>/samples.txt: every code sample, its page and the tests that run it."""
    if exception is not None or app.builder.name != "html":
        return
    samples = app.env.__dict__.get("wshandle_samples", {})
    lines = []
    for doc in sorted(samples):
        for rel, tests in samples[doc]:
            lines.append(f"{doc}: {rel} <- {', '.join(tests)}")
    files = {rel for doc in samples for rel, _ in samples[doc]}
    text = (f"{len(lines)} code samples (C, C++, Python) from {len(files)} files, each included "
            "from a file that a test compiles or runs:\n")
    Path(app.outdir, "samples.txt").write_text(text + "\n".join(lines) + "\n", encoding="utf-8")


def _plain_references_in_man_pages(app, doctree, docname):
    """A man page cannot link: show internal references as their text (the man writer would
    otherwise print the HTML anchor, e.g. "ws_close() <#c.ws_close>")."""
    if app.builder.name != "man":
        return
    from docutils import nodes

    for ref in list(doctree.findall(nodes.reference)):
        uri = ref.get("refuri", "")
        if not uri.startswith(("http:", "https:", "mailto:")):
            ref.replace_self(nodes.inline("", "", *ref.children))


def _python_reference_complete(app, env):
    """Every name the package exports (`wshandle.__all__`) has an entry in the Python
    reference, so a new export cannot go undocumented."""
    from sphinx.util import logging

    import wshandle

    py = env.get_domain("py")
    missing = [n for n in wshandle.__all__ if f"wshandle.{n}" not in py.objects]
    if missing:
        logging.getLogger("wshandle_docs").warning(
            "wshandle exports names the Python reference does not document: %s",
            ", ".join(missing), location="reference/python")


def setup(app):
    app.connect("env-check-consistency", _python_reference_complete)
    app.connect("doctree-resolved", _plain_references_in_man_pages)
    app.connect("missing-reference", _python_reference_fallback)
    app.connect("doctree-read", _check_samples)
    app.connect("env-merge-info", _merge_samples)
    app.connect("env-purge-doc", _purge_samples)
    app.connect("build-finished", _write_samples)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
