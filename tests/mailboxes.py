"""Hostile but valid service mailboxes, shared by the tests of every place a mailbox goes (tests/unit/test_sinks.py
for each sink, tests/e2e/test_progress_page.py for the page in a browser).

Exchange's rule (shared/models.py) lets in ! # $ % & ' * + - / = ? ^ _ ` { | } ~ before the @, so narrowing the input
is no defence: each sink must be safe for all of these."""

# PowerShell, OData quotes, Table key characters, RFC 4514 / X.500 specials, logging's % and braces.
HOSTILE_VALID = [
    "x'|iex|'@contoso.com",
    "a/b#c?d@contoso.com",
    "{$x}@contoso.com",
    "o'brien+sync@contoso.com",
    "x`whoami`@contoso.com",
    "100%s{0}%d@contoso.com",
    "=cmd|'/ccalc'!a1@contoso.com",
    "#lead@contoso.com",
    "a+b=c&d*e^f~g@contoso.com",
    "1'or'1'='1@contoso.com",
    "!#$%&'*+-/=?^_`{|}~@contoso.com",
    "first.last@sub.contoso.co.uk",
    "x" * 64 + "@contoso.com",
]

# HTML and JavaScript: a quote that ends an attribute and starts an event handler, character references without
# their semicolon (which HTML still decodes), a template literal, template-engine braces.
HOSTILE_HTML = [
    "x'/onmouseover='window.pwned=1'@contoso.com",
    "'/autofocus/onfocus='window.pwned=1'/x='@contoso.com",
    "&lt&gt&amp&quot@contoso.com",
    "&#60script&#62@contoso.com",
    "x`+window.pwned`1`+`@contoso.com",
    "{{7*7}}${7*7}#{x}@contoso.com",
]
