"""One JSON request to a marketplace API, with every failure turned into :class:`MarketplaceApiError`.

Each client owns an ``httpx.AsyncClient`` built here (base URL, timeout; tests pass an ASGI transport to run
against the simulator in-process) and names how its channel reports errors inside a 2xx body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Generic, TypeVar

import httpx

from services.gateway.clients.base import MarketplaceApiError
from services.gateway.clients.tokens import TokenSource

__all__ = [
    "ChannelClient",
    "ErrorProbe",
    "JsonApi",
    "MarketplaceRefused",
    "MarketplaceUnavailable",
    "RefusalProbe",
    "ShopClient",
    "build_http_client",
]

#: Returns the channel's error message when a decoded body reports an error, else None.
ErrorProbe = Callable[[Mapping[str, object]], str | None]
#: True when the error inside a 2xx body refuses the request itself (an unknown order): retrying cannot help.
RefusalProbe = Callable[[Mapping[str, object]], bool]


def _never_refused(body: Mapping[str, object]) -> bool:
    return False


_SNIPPET = 300
_UNAVAILABLE_4XX = frozenset({401, 403, 408, 409, 425, 429})
"""4xx answers that are not the request's fault: an authorisation being renewed, a timeout, a conflict, a rate
limit. Any other 4xx (400 bad request, 404 unknown order, 422) refuses the request itself."""


class MarketplaceUnavailable(MarketplaceApiError):
    """The API could not answer now (no connection, timeout, 5xx, 429, 401/403): worth retrying later."""


class MarketplaceRefused(MarketplaceApiError):
    """The API refused the request itself (4xx such as 400 or 404 for an unknown order): retrying cannot help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def build_http_client(
    base_url: str, timeout_s: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for one channel's API; redirects are not followed (a redirect is an error)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        timeout=httpx.Timeout(timeout_s),
        transport=transport,
        follow_redirects=False,
        headers={"Accept": "application/json", "User-Agent": "karya-gateway/0.1"},
    )


class JsonApi:
    """Sends requests for one channel and decodes JSON object answers."""

    def __init__(
        self,
        channel: str,
        http: httpx.AsyncClient,
        error_probe: ErrorProbe,
        refusal_probe: RefusalProbe = _never_refused,
    ) -> None:
        self.channel = channel
        self.http = http
        self._error_probe = error_probe
        self._refusal_probe = refusal_probe

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> Mapping[str, object]:
        """Send one request and return the decoded JSON object.

        Raises:
            MarketplaceApiError: timeout, connection failure, non-2xx answer, a body that is not a JSON
                object, or a body the channel marks as an error. The message names the channel, method,
                path, and the marketplace's own error text when there is one. An error inside a 2xx body is
                :class:`MarketplaceRefused` when the channel's refusal probe says so (an unknown order), else
                :class:`MarketplaceUnavailable`.
        """
        where = f"{self.channel} API {method} {path}"
        try:
            response = await self.http.request(
                method, path, params=dict(params or {}), headers=dict(headers or {}), content=content
            )
        except httpx.TimeoutException as exc:
            raise MarketplaceUnavailable(f"{where}: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise MarketplaceUnavailable(f"{where}: request failed: {type(exc).__name__}: {exc}") from exc
        body = _decode(response)
        if not response.is_success:
            status = response.status_code
            detail = (self._error_probe(body) if body is not None else None) or _snippet(response.text)
            failed = f"{where}: HTTP {status}: {detail}"
            if 400 <= status < 500 and status not in _UNAVAILABLE_4XX:
                raise MarketplaceRefused(failed, status)
            raise MarketplaceUnavailable(failed)
        if body is None:
            raise MarketplaceApiError(f"{where}: answer is not a JSON object: {_snippet(response.text)}")
        message = self._error_probe(body)
        if message is not None:
            failed = f"{where}: marketplace error: {message}"
            if self._refusal_probe(body):
                raise MarketplaceRefused(failed, response.status_code)
            raise MarketplaceUnavailable(failed)
        return body

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        await self.http.aclose()


def _decode(response: httpx.Response) -> Mapping[str, object] | None:
    try:
        # Decimal, not float: "25000.00000000000001" must stay non-integral instead of rounding to 25000.0.
        body = json.loads(response.content, parse_float=Decimal)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _snippet(text: str) -> str:
    text = text.strip()
    if not text:
        return "(empty body)"
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


class ChannelClient:
    """What every channel's client shares: its name, one :class:`JsonApi`, its clock and closing it."""

    channel: str

    def __init__(
        self,
        base_url: str,
        error_probe: ErrorProbe,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        refusal_probe: RefusalProbe = _never_refused,
    ) -> None:
        http = build_http_client(base_url, timeout_s, transport)
        self._api = JsonApi(self.channel, http, error_probe, refusal_probe)
        self._clock = clock

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._api.aclose()


AppId = TypeVar("AppId", int, str)


class ShopClient(ChannelClient, Generic[AppId]):
    """A client that acts for one shop at a time with that shop's token (Shopee, TikTok Shop): the app's id and
    secret, which sign every call, and the shop tokens. A subclass names its channel and its :meth:`error_in`."""

    def __init__(
        self,
        base_url: str,
        app_id: AppId,
        app_secret: str,
        tokens: TokenSource,
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        refused = self.refused_in
        super().__init__(
            base_url, self.error_in, timeout_s=timeout_s, transport=transport, clock=clock, refusal_probe=refused
        )
        self._app_id: AppId = app_id
        self._app_secret = app_secret
        self._tokens = tokens

    @staticmethod
    def error_in(body: Mapping[str, object]) -> str | None:
        """The channel's error inside a decoded body (its message), else None: the :data:`ErrorProbe`."""
        raise NotImplementedError

    @staticmethod
    def refused_in(body: Mapping[str, object]) -> bool:
        """Whether the error inside a decoded 2xx body refuses the request itself (:data:`RefusalProbe`); by
        default none does: the call is counted unavailable and retried."""
        return False
