"""The gate's own HTML: the login form, the logout button, and the same-site reload page."""

from __future__ import annotations

from html import escape

# No script, no external resource: nothing on these pages can be framed, injected or loaded.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; background: #f5f6f8;
       display: flex; align-items: center; justify-content: center; min-height: 100vh; margin: 0; }
main { background: #fff; padding: 2rem 2.25rem; border-radius: 8px; width: 20rem;
       box-shadow: 0 1px 3px rgba(0,0,0,.12); }
h1 { font-size: 1.2rem; margin: 0 0 1.25rem; }
label { display: block; font-size: .85rem; margin: .9rem 0 .3rem; color: #333; }
input { width: 100%; box-sizing: border-box; padding: .55rem .6rem; font-size: 1rem;
        border: 1px solid #c8ccd2; border-radius: 4px; }
button { margin-top: 1.4rem; width: 100%; padding: .6rem; font-size: 1rem; border: 0;
         border-radius: 4px; background: #4f43dd; color: #fff; cursor: pointer; }
.error { color: #b00020; font-size: .9rem; margin: 0 0 .5rem; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def login_page(next_path: str, error: str | None = None) -> str:
    error_html = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Sign in · Dagster",
        "<h1>Sign in to Dagster</h1>"
        f"{error_html}"
        '<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{escape(next_path)}">'
        '<label for="username">User name</label>'
        '<input id="username" name="username" autocomplete="username" required autofocus>'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Sign in</button>'
        "</form>",
    )


def logout_page() -> str:
    return _page(
        "Sign out · Dagster",
        "<h1>Sign out of Dagster</h1>"
        '<form method="post" action="/logout"><button type="submit">Sign out</button></form>',
    )


def reload_page(url: str) -> str:
    """Re-requests `url` from this origin: a link from another site arrives without the
    SameSite=Strict cookie, the reload (now same-site) carries it."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={escape(url)}">'
        "<title>Dagster</title></head>"
        f'<body><a href="{escape(url)}">Continue</a></body></html>\n'
    )
