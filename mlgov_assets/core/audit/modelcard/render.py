"""Model card backends: Markdown (GFM) and one self-contained HTML page. Pure: bundle in, text out.

All text is escaped: HTML through ``html.escape`` plus a Content-Security-Policy that forbids
scripts and remote loads; Markdown by escaping inline HTML and link/emphasis syntax. The same
bundle always renders to the same bytes.
"""

from __future__ import annotations

import html
import re

from mlgov_assets.core.audit.modelcard.document import Block, Cell, Code, Href, Src, build_document
from mlgov_assets.core.audit.modelcard.schema import AnyBundle, Source, safe_url

__all__ = ["render_html", "render_markdown"]

# --------------------------------------------------------------------------- Markdown backend

# Escaped everywhere: syntax that could link, embed, emphasize or split a table cell. An underscore
# inside a word cannot start emphasis in GFM, so identifiers like `education_num` stay readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def _md_text(text: str) -> str:
    """Escape Markdown syntax and inline HTML: the card must show text, never interpret it."""
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), html.escape(text, quote=False))


def _md_paragraph(text: str) -> str:
    """``_md_text`` for free text, also neutralizing line-start block syntax (headings, lists, rules)."""
    lines = []
    for line in _md_text(text).splitlines():
        line = re.sub(r"^(\s*)([#+=-])", r"\1\\\2", line)
        lines.append(re.sub(r"^(\s*\d{1,9})([.)])(?=\s|$)", r"\1\\\2", line))
    return "  \n".join(lines)  # keep the author's line breaks as hard breaks


def _md_code(text: str) -> str:
    text = text.replace("\r", " ").replace("\n", " ")
    longest = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_source(src: Source) -> str:
    ref = _md_code(src.ref)
    url = safe_url(src.url)
    ref = f"[{ref}](<{url}>)" if url else ref
    return f"{_md_text(src.kind)} {ref} · sha256 {_md_code(src.sha256)}"


def _md_cell(cell: Cell, in_table: bool) -> str:
    if isinstance(cell, Href):
        return f"[{_md_text(cell.text)}](<{cell.url}>)"  # safe_url admits no '|', '<' or '>'
    if isinstance(cell, (Code, Src)):
        out = _md_code(cell.text) if isinstance(cell, Code) else _md_source(cell.source)
        # GFM splits table cells on '|' before parsing code spans, so pipes there need a backslash
        return out.replace("|", "\\|") if in_table else out
    return _md_text(cell.replace("\r", " ").replace("\n", " ") if in_table else cell)  # escapes '|'


def _md_table(headers: list[str], rows: list[list[Cell]]) -> list[str]:
    lines = ["| " + " | ".join(_md_text(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c, True) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _md_block(block: Block) -> list[str]:
    if block.kind == "text":
        return [line for p in _paragraphs(block.data) for line in (_md_paragraph(p), "")]
    if block.kind == "kv":
        return [f"- **{_md_text(k)}:** {_md_cell(v, False)}" for k, v in block.data] + [""]
    if block.kind == "table":
        return _md_table(*block.data)
    if block.kind == "source":
        return [f"_Source:_ {_md_source(block.data)}", ""]
    if block.kind == "na":
        return [f"_Not available ({_md_text(block.data)})._", ""]
    if block.kind == "h3":
        return [f"### {_md_text(block.data)}", ""]
    raise AssertionError(block.kind)


def render_markdown(bundle: AnyBundle) -> str:
    """The model card as Markdown (GFM tables). Raises BundleError naming every schema problem."""
    doc = build_document(bundle)
    lines = [f"# {_md_text(doc.title)}", ""]
    for block in doc.header:
        lines += _md_block(block)
    for section in doc.sections:
        lines += [f"## {_md_text(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML backend

_CSS = (
    "\n"
    'body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;'
    "background:#f6f7f9}\n"
    "main{max-width:1100px;margin:0 auto;padding:24px 32px;background:#fff}\n"
    "h1{font-size:24px;margin:0 0 12px}h2{font-size:18px;border-bottom:1px solid #dde1e7;"
    "padding-bottom:4px;margin-top:28px}\n"
    "h3{font-size:15px}\n"
    "table{border-collapse:collapse;margin:8px 0;width:100%;font-size:13px}\n"
    "th,td{border:1px solid #dde1e7;padding:4px 8px;text-align:left;vertical-align:top}\n"
    "th{background:#f0f2f5}\n"
    "code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f0f2f5;padding:1px 3px;"
    "border-radius:3px;word-break:break-all}\n"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;"
    "margin:8px 0}dt{font-weight:600}dd{margin:0}\n"
    ".source{color:#4a5466;font-size:12px;margin:4px 0 12px}\n"
    ".na{color:#8a6d00;font-style:italic}\n"
    ".PASS{color:#11723b;font-weight:600}.FAIL,.DRIFT,.OVERRIDE{color:#b3261e;font-weight:600}\n"
    "footer{margin-top:32px;color:#4a5466;font-size:12px}\n"
)
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_source(src: Source) -> str:
    url = safe_url(src.url)
    ref = (
        f'<a href="{_h(url)}" rel="noopener noreferrer"><code>{_h(src.ref)}</code></a>'
        if url
        else f"<code>{_h(src.ref)}</code>"
    )
    return f'{_h(src.kind)} {ref} · sha256 <code class="hash">{_h(src.sha256)}</code>'


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, Code):
        return f"<code>{_h(cell.text)}</code>"
    if isinstance(cell, Href):
        return f'<a href="{_h(cell.url)}" rel="noopener noreferrer">{_h(cell.text)}</a>'
    if isinstance(cell, Src):
        return _html_source(cell.source)
    if cell in ("PASS", "FAIL", "DRIFT", "OVERRIDE"):
        return f'<span class="{cell}">{cell}</span>'
    return _h(cell)


def _html_table(headers: list[str], rows: list[list[Cell]]) -> str:
    head = "".join(f"<th>{_h(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Block) -> str:
    if block.kind == "text":
        return "".join("<p>" + "<br>".join(_h(x) for x in p.splitlines()) + "</p>" for p in _paragraphs(block.data))
    if block.kind == "kv":
        return "<dl>" + "".join(f"<dt>{_h(k)}</dt><dd>{_html_cell(v)}</dd>" for k, v in block.data) + "</dl>"
    if block.kind == "table":
        return _html_table(*block.data)
    if block.kind == "source":
        return f'<p class="source">Source: {_html_source(block.data)}</p>'
    if block.kind == "na":
        return f'<p class="na">Not available ({_h(block.data)}).</p>'
    if block.kind == "h3":
        return f"<h3>{_h(block.data)}</h3>"
    raise AssertionError(block.kind)


def render_html(bundle: AnyBundle) -> str:
    """The model card as one self-contained HTML page: inline CSS, no scripts, no remote loads."""
    doc = build_document(bundle)
    body = [f"<h1>{_h(doc.title)}</h1>"] + [_html_block(b) for b in doc.header]
    for section in doc.sections:
        inner = "".join(_html_block(b) for b in section.blocks)
        body.append(f'<section id="{_h(section.anchor)}"><h2>{_h(section.title)}</h2>{inner}</section>')
    body.append(
        f"<footer>Rendered from evidence bundle sha256 <code>{doc.digest}</code>; every source hash above "
        "can be re-checked with <code>mlgov audit</code>.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_h(_CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_h(doc.title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
