"""The headless browser of the OAuth tests and our consent page, parsed.

`browse()` follows Location headers itself (follow_redirects=False) with a
cookie jar, only on our server and the provider, posts the provider's login
and consent forms and our consent page (approve by default,
`consent="deny"`, or `consent=None` to stop at it), and stops at any other
location (the client's redirect URI, or a foreign host) or at a
non-redirect answer (e.g. our 400), never fetching it; `stop_before` stops
at one of our paths (e.g. /oauth/callback), `http` lends it a cookie jar
the test keeps. `consent_page()` parses our consent page (`ConsentPage`).
"""

from __future__ import annotations

import html.parser
import re
import urllib.parse
from dataclasses import dataclass, field

import httpx2

from oidc_login import LoginError, _form_action

@dataclass
class Hop:
    method: str
    url: str
    status: int
    location: str | None
    set_cookies: list[str] = field(default_factory=list)  # the Set-Cookie headers of this answer


@dataclass
class BrowseResult:
    hops: list[Hop]
    stopped_at: str | None  # a Location outside the followed origins (not fetched)
    response: httpx2.Response | None  # the last answer when it was no redirect
    consents: list[str] = field(default_factory=list)  # decisions posted on our consent page, in order

    @property
    def params(self) -> dict[str, str]:
        """Query parameters of `stopped_at` (first value each)."""
        if not self.stopped_at:
            return {}
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.stopped_at).query, keep_blank_values=True)
        return {k: v[0] for k, v in q.items()}

    @property
    def consent_shown(self) -> bool:
        """Our consent page was shown (answered or returned)."""
        return bool(self.consents) or (self.response is not None and consent_page(self.response) is not None)

    def describe(self) -> str:
        lines = [f"  {h.method} {h.url} -> {h.status}" + (f" Location: {h.location}" if h.location else "")
                 for h in self.hops]
        tail = ""
        if self.response is not None:
            tail = f"\n  final body: {self.response.text[:800]!r}"
        return "hops:\n" + "\n".join(lines) + tail


def origin(url: str) -> str:
    """scheme://host[:port] of `url`."""
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


# --------------------------------------------------------------------------
# our consent page
# --------------------------------------------------------------------------

@dataclass
class HtmlForm:
    action: str | None
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)  # attributes of each <input>
    buttons: list[dict[str, str]] = field(default_factory=list)  # attributes of each <button> (and submit inputs)


class _Forms(html.parser.HTMLParser):
    """Every <form> of a page with its inputs and buttons (attribute values
    unescaped, as a browser reads them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self.outside: list[dict[str, str]] = []  # controls outside any form
        self._open: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._open = HtmlForm(a.get("action"), a.get("method", "get").lower())
            self.forms.append(self._open)
        elif tag in ("input", "button"):
            target = self._open
            if target is None:
                self.outside.append(a)
            elif tag == "button" or a.get("type", "").lower() == "submit":
                target.buttons.append(a)
            else:
                target.inputs.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def html_forms(text: str) -> _Forms:
    p = _Forms()
    p.feed(text)
    p.close()
    return p


@dataclass
class ConsentPage:
    """Our consent page (200 text/html from /oauth/callback)."""

    response: httpx2.Response
    forms: list[HtmlForm]
    action: str  # absolute URL of the form's action
    method: str
    csrf_token: str
    decisions: list[str]  # values of the submit controls named "decision"

    @property
    def html(self) -> str:
        return self.response.text

    @property
    def text(self) -> str:
        """The page's visible text (tags dropped, entities decoded, spaces squeezed)."""
        import html as html_mod

        body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", self.html)
        return re.sub(r"\s+", " ", html_mod.unescape(re.sub(r"(?s)<[^>]*>", " ", body))).strip()

    def form(self, decision: str = "approve", csrf_token: str | None = None) -> dict[str, str]:
        """What a browser posts when the user presses `decision`."""
        return {"csrf_token": self.csrf_token if csrf_token is None else csrf_token, "decision": decision}


def consent_page(resp: httpx2.Response) -> ConsentPage | None:
    """Our consent page when `resp` is one (a 200 HTML answer whose form has
    a csrf_token and submit controls named decision), else None."""
    if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
        return None
    text = resp.text
    if "csrf_token" not in text or "decision" not in text:
        return None
    parsed = html_forms(text)
    for f in parsed.forms:
        csrf = [i.get("value", "") for i in f.inputs if i.get("name") == "csrf_token"]
        decisions = [b.get("value", "") for b in f.buttons if b.get("name") == "decision"]
        if csrf and decisions:
            action = urllib.parse.urljoin(str(resp.url), f.action or str(resp.url))
            return ConsentPage(resp, parsed.forms, action, f.method, csrf[0], decisions)
    return None


def browser(timeout: float = 10.0) -> httpx2.Client:
    """A fresh browser (cookie jar, no automatic redirects) to lend `browse()`."""
    return httpx2.Client(follow_redirects=False, timeout=timeout)


def login_cookies(http: httpx2.Client) -> dict[str, str]:
    """Our browser-binding cookies in a browser's jar (name -> value)."""
    return {c.name: c.value or "" for c in http.cookies.jar if c.name.startswith("mcp_login_")}


def browse(url: str, follow: list[str], user: str = "alice", password: str = "anything",
           max_steps: int = 25, timeout: float = 10.0, deny: bool = False, consent: str | None = "approve",
           stop_before: str | None = None, http: httpx2.Client | None = None) -> BrowseResult:
    """Act as the user's browser from `url`: follow redirects whose origin is in
    `follow` (our server, the provider), post the provider's login and consent
    forms (or with `deny`, take the provider's abort link: access_denied),
    answer our consent page with `consent` ("approve", "deny"; None stops
    there and returns the page as `response`), stop at any other Location
    (unfetched), at a followed Location whose path starts with `stop_before`
    (unfetched), or at a non-redirect answer that is no form we know.
    `http` (see `browser()`) keeps the cookie jar for the caller."""
    origins = {origin(u) for u in follow}
    hops: list[Hop] = []
    consents: list[str] = []
    own = http is None
    client = browser(timeout) if http is None else http
    try:
        resp = client.get(url)
        for _ in range(max_steps):
            loc = resp.headers.get("location")
            absolute = urllib.parse.urljoin(str(resp.url), loc) if loc else None
            hops.append(Hop(resp.request.method, str(resp.url), resp.status_code, absolute,
                            resp.headers.get_list("set-cookie")))
            if resp.status_code in (301, 302, 303, 307, 308) and absolute:
                if origin(absolute) not in origins:
                    return BrowseResult(hops, absolute, None, consents)
                if stop_before and urllib.parse.urlsplit(absolute).path.startswith(stop_before):
                    return BrowseResult(hops, absolute, None, consents)
                resp = client.get(absolute)
                continue
            page = consent_page(resp)
            if page is not None:
                if consent is None:
                    resp.read()
                    return BrowseResult(hops, None, resp, consents)
                consents.append(consent)
                resp = client.post(page.action, data=page.form(consent))
                continue
            html = resp.text if resp.status_code == 200 else ""
            abort = re.search(r'href="([^"]*/abort)"', html)
            if deny and abort and 'name="prompt"' in html:
                resp = client.get(urllib.parse.urljoin(str(resp.url), abort.group(1).replace("&amp;", "&")))
            elif 'name="prompt" value="login"' in html:
                resp = client.post(_form_action(html, str(resp.url)),
                                   data={"prompt": "login", "login": user, "password": password})
            elif 'name="prompt" value="consent"' in html:
                resp = client.post(_form_action(html, str(resp.url)), data={"prompt": "consent"})
            else:
                resp.read()
                return BrowseResult(hops, None, resp, consents)
        raise LoginError(f"no end after {max_steps} steps from {url}\n"
                         + BrowseResult(hops, None, None, consents).describe())
    finally:
        if own:
            client.close()
