"""The server's HTTP side of OAuth2: discovery, JWKS, token exchange, userinfo.

Asynchronous (never on the database thread), with a timeout per call and a cap on every
response body, since provider answers are untrusted input. Discovery documents and key
sets are cached per provider; a key set is refetched once when a token names an unknown
key (rotation).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qpi.server.domain.errors import UnauthenticatedError, UnavailableError
from qpi.server.security.oauth2_providers import OAuth2ProviderConfig

if TYPE_CHECKING:
    import httpx

MAX_RESPONSE_BYTES = 1_048_576
TIMEOUT_SECONDS = 10.0
CACHE_SECONDS = 3600.0
_ERROR_CHARS = 120


@dataclass(frozen=True)
class Endpoints:
    """Where a provider's OAuth2 endpoints are (discovered or configured)."""

    authorization: str
    token: str
    userinfo: str
    jwks: str
    basic_client_auth: bool
    """Send the client secret with HTTP Basic (else in the form body)."""


def _clip(text: object) -> str:
    value = " ".join(str(text).split())
    return value if len(value) <= _ERROR_CHARS else value[: _ERROR_CHARS - 1] + "…"


class OAuth2Http:
    """One ``httpx.AsyncClient`` for every provider call, with small caches.

    httpx is imported, and the client made, on the first provider call: most servers
    configure no provider, and httpx's import (which pulls in rich and pygments for its
    command line) added about 0.15 s to every ``qpi serve`` start."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._discovery: dict[str, tuple[float, dict[str, Any]]] = {}
        self._jwks: dict[str, tuple[float, dict[str, Any]]] = {}

    async def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # noqa: PLC0415 (see the class)

            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                headers={"Accept": "application/json", "User-Agent": "qpi-server"},
            )
        return self._client

    async def endpoints(self, provider: OAuth2ProviderConfig) -> Endpoints:
        """The provider's endpoints: configured ones override discovered ones."""
        found: dict[str, Any] = {}
        if provider.issuer:
            found = await self._discover(provider)
        methods = found.get("token_endpoint_auth_methods_supported")
        if provider.issuer:
            # RFC 8414: client_secret_basic is the default when the list is absent.
            basic = not isinstance(methods, list) or "client_secret_basic" in methods
        else:
            basic = False  # plain OAuth2 providers (e.g. GitHub) take the secret in the form
        endpoints = Endpoints(
            authorization=provider.auth_url or str(found.get("authorization_endpoint") or ""),
            token=provider.token_url or str(found.get("token_endpoint") or ""),
            userinfo=provider.userinfo_url or str(found.get("userinfo_endpoint") or ""),
            jwks=provider.jwks_url or str(found.get("jwks_uri") or ""),
            basic_client_auth=basic,
        )
        if not endpoints.authorization or not endpoints.token:
            raise UnavailableError(
                "UNAVAILABLE",
                f"The OAuth2 provider {provider.name} publishes no authorization or token "
                "endpoint.",
                metadata={"provider": provider.name},
            )
        return endpoints

    async def _discover(self, provider: OAuth2ProviderConfig) -> dict[str, Any]:
        cached = self._discovery.get(provider.name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        url = f"{provider.issuer}/.well-known/openid-configuration"
        document = await self._get_json(provider, url)
        if str(document.get("issuer", "")).rstrip("/") != provider.issuer:
            raise UnavailableError(
                "UNAVAILABLE",
                f"The OAuth2 provider {provider.name}'s discovery document names another issuer.",
                metadata={"provider": provider.name},
            )
        self._discovery[provider.name] = (time.monotonic() + CACHE_SECONDS, document)
        return document

    async def jwks(self, provider: OAuth2ProviderConfig, url: str, refresh: bool) -> dict[str, Any]:
        """The provider's key set (cached unless ``refresh``)."""
        cached = self._jwks.get(provider.name)
        if cached and cached[0] > time.monotonic() and not refresh:
            return cached[1]
        keys = await self._get_json(provider, url)
        self._jwks[provider.name] = (time.monotonic() + CACHE_SECONDS, keys)
        return keys

    async def exchange_code(
        self,
        provider: OAuth2ProviderConfig,
        endpoints: Endpoints,
        *,
        code: str,
        redirect_uri: str,
        verifier: str,
    ) -> dict[str, Any]:
        """Trade an authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5).

        Raises:
            UnauthenticatedError: ``OAUTH2_PROVIDER_ERROR`` when the provider refuses.
            UnavailableError: When the provider cannot be reached or fails.
        """
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        if verifier:
            form["code_verifier"] = verifier
        auth: tuple[str, str] | None = None  # httpx sends a pair with HTTP Basic
        if provider.client_secret and endpoints.basic_client_auth:
            auth = (provider.client_id, provider.client_secret)
        else:
            form["client_id"] = provider.client_id
            if provider.client_secret:
                form["client_secret"] = provider.client_secret
        status, body = await self._send(provider, "POST", endpoints.token, data=form, auth=auth)
        if status >= 500:
            raise self._unavailable(provider)
        if status != 200 or "error" in body:
            reason = body.get("error_description") or body.get("error") or f"HTTP {status}"
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR",
                f"The provider refused the authorization code: {_clip(reason)}.",
                metadata={"provider": provider.name},
            )
        if not isinstance(body.get("access_token"), str):
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR",
                "The provider's token response has no access token.",
                metadata={"provider": provider.name},
            )
        return body

    async def userinfo(
        self, provider: OAuth2ProviderConfig, url: str, access_token: str
    ) -> dict[str, Any]:
        """The userinfo claims for an access token."""
        status, body = await self._send(
            provider, "GET", url, headers={"Authorization": f"Bearer {access_token}"}
        )
        if status >= 500:
            raise self._unavailable(provider)
        if status != 200:
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR",
                f"The provider refused the userinfo request (HTTP {status}).",
                metadata={"provider": provider.name},
            )
        return body

    async def _get_json(self, provider: OAuth2ProviderConfig, url: str) -> dict[str, Any]:
        status, body = await self._send(provider, "GET", url)
        if status != 200:
            raise self._unavailable(provider)
        return body

    async def _send(
        self, provider: OAuth2ProviderConfig, method: str, url: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request; the body is read up to MAX_RESPONSE_BYTES and decoded as JSON."""
        client = self._http()
        import httpx  # noqa: PLC0415 (loaded by _http already; see the class)

        try:
            async with client.stream(method, url, **kwargs) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise UnauthenticatedError(
                            "OAUTH2_PROVIDER_ERROR",
                            "The provider's answer is too large.",
                            metadata={"provider": provider.name},
                        )
                    chunks.append(chunk)
                status = response.status_code
        except httpx.HTTPError:
            raise self._unavailable(provider) from None
        try:
            body = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if status >= 500:
                raise self._unavailable(provider)
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR",
                f"The provider's answer is not a JSON object (HTTP {status}).",
                metadata={"provider": provider.name},
            )
        return status, body

    @staticmethod
    def _unavailable(provider: OAuth2ProviderConfig) -> UnavailableError:
        return UnavailableError(
            "UNAVAILABLE",
            f"The OAuth2 provider {provider.name} could not be reached; try again later.",
            metadata={"provider": provider.name},
        )
