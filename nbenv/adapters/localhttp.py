"""HTTP to a server nbenv started itself (an environment's Jupyter, the hub), on the address it is published on.

Never through an HTTP proxy from the environment (`http_proxy`/`HTTP_PROXY`, which urllib's default opener
honours and which would receive the request and its token), never following a redirect elsewhere.
"""

from __future__ import annotations

import urllib.error
import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def status(url: str, *, token: str | None = None, timeout: float = 2) -> int | None:
    """The HTTP status `url` answers with (a 3xx is not followed), sent with `Authorization: token TOKEN`
    when a token is given; None when nothing answers."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with NO_PROXY.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None
