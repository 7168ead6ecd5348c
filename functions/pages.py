"""HTML for people: the pages the onboarding link, the consent callback and the progress page answer.

Every page is server-rendered, self-contained (no external assets, no framework) and sent with a strict
Content-Security-Policy: nothing loads but the page itself, and the one inline script and style run only with
the page's nonce. Every value that comes from a request or a record goes through `escape` (html.escape with
quotes), whatever the page.
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Callable, Iterable

import azure.functions as func

from functions.api import handled

STYLE = """
:root{color-scheme:light dark;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5}
body{max-width:46rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.5rem;margin:0 0 .5rem}
.muted{opacity:.75}
.box{border:1px solid #8884;border-radius:.5rem;padding:.75rem 1rem;margin:1rem 0}
.error{border-color:#c33;background:#c331}
.warning{border-color:#b80;background:#b801}
.ok{border-color:#393;background:#3931}
.info{border-color:#06c;background:#06c1}
.box p{margin:.25rem 0}
.box h2{margin-top:0}
ol:not(.steps) > li{margin:.4rem 0}
ol.steps{padding-left:1.25rem}
ol.steps li{margin:.25rem 0}
code{font-family:ui-monospace,Consolas,monospace;overflow-wrap:anywhere}
a.button,button{display:inline-block;padding:.4rem .9rem;border-radius:.4rem;border:1px solid #06c;
  background:#06c;color:#fff;text-decoration:none;font:inherit;cursor:pointer}
button:disabled{opacity:.5;cursor:default}
h2{font-size:1.15rem;margin:1.25rem 0 .25rem}
h3{font-size:1rem;margin:.75rem 0 .25rem}
ol.steps{list-style:none;padding-left:0}
ol.steps .mark{display:inline-block;width:1.5rem;text-align:center;font-weight:bold}
ol.steps .state{opacity:.75}
ol.steps .detail{display:block;margin-left:1.5rem;opacity:.75;font-size:.9rem;overflow-wrap:anywhere}
li[data-state=done] .mark{color:#393}
li[data-state=running] .mark,li[data-state=waiting] .mark{color:#06c}
li[data-state=attention] .mark{color:#b80}
li[data-state=failed] .mark{color:#c33}
li[data-state=pending]{opacity:.6}
li[aria-current=step] .label{font-weight:bold}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
dl.facts dt{font-weight:bold}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
"""


def escape(value: object) -> str:
    """Text for HTML content and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def new_nonce() -> str:
    """A fresh CSP nonce for one answer."""
    return secrets.token_urlsafe(18)


def security_headers(nonce: str) -> dict[str, str]:
    """Headers of every page: only this page's own nonce'd script and style run, it connects and posts only to its
    own origin, it cannot be framed, and it leaks no URL (its capability token) through the Referer."""
    policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
              "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return {"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


def html_page(status: int, title: str, body: str, *, nonce: str | None = None, script: str | None = None,
              head: str = "", headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A whole page: `title` is text (escaped here); `body`, `head` and `script` are markup the caller built with
    `escape` for every value it did not write itself."""
    nonce = nonce or new_nonce()
    # The icon is inline (data:, allowed by img-src), so no browser asks the host for a /favicon.ico it hasn't got.
    inline = f'<script nonce="{nonce}">{script}</script>' if script else ""
    document = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f'<meta name="referrer" content="no-referrer"><link rel="icon" href="data:,">'
                f'<title>{escape(title)}</title>'
                f'<style nonce="{nonce}">{STYLE}</style>{head}</head>'
                f'<body><main>{body}</main>{inline}</body></html>')
    return func.HttpResponse(document, status_code=status, mimetype="text/html", charset="utf-8",
                             headers={**security_headers(nonce), **(headers or {})})


def message_page(status: int, title: str, paragraphs: Iterable[str], *, links: Iterable[tuple[str, str]] = (),
                 kind: str = "error", headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A page that says one thing: what happened (`paragraphs`, plain text) and where to go (`links`, (text, url))."""
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    anchors = "".join(f'<p><a href="{escape(url)}">{escape(label)}</a></p>' for label, url in links)
    body = f'<h1>{escape(title)}</h1><div class="box {escape(kind)}" role="status">{text}</div>{anchors}'
    return html_page(status, title, body, headers=headers)


def _failure_page(correlation: str) -> func.HttpResponse:
    return message_page(500, "Something went wrong", [
        "certauth could not answer this page. Try again in a minute; if it keeps failing, give your provider this "
        f"correlation id: {correlation}."], headers={"x-ms-correlation-request-id": correlation})


def handled_page(log: logging.Logger) -> Callable:
    """Wrap a page's HTTP function: an unhandled exception answers a 500 page with a correlation id, which the log
    line (with the traceback) carries too; the person never sees the exception."""
    return handled(log, _failure_page)
