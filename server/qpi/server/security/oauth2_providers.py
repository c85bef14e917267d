"""OAuth2 / OpenID Connect provider configuration (``--oauth2-providers``).

The option holds a JSON array (or, in the config file, a list) of provider objects. Keys
(camelCase, as the original server's config; unknown keys are refused):

``name`` (required)
    Identifier used in URLs: lowercase letters, digits, ``-`` and ``_``.
``displayName``
    Label of the sign-in button (default: ``name``).
``issuer``
    OpenID Connect issuer; endpoints are discovered from
    ``<issuer>/.well-known/openid-configuration`` and ID tokens are validated against it.
``authURL``, ``tokenURL``, ``userInfoURL``, ``jwksURL``
    Explicit endpoints; they override discovered ones. Without ``issuer``, ``authURL``,
    ``tokenURL`` and ``userInfoURL`` are required (plain OAuth2: the user comes from the
    userinfo endpoint).
``clientId`` (required), ``clientSecret``
    The client registered with the provider; without a secret the client is public and
    relies on PKCE alone.
``scopes``
    Requested scopes (default ``["openid", "email", "profile"]`` with ``issuer``, else
    ``["email"]``).
``pkce``
    Send a PKCE S256 challenge (default ``true``).
``redirectURL``
    The callback URL registered with the provider, when the one derived from the request
    (``<scheme>://<host>/api/oauth2/<name>/callback``) is wrong, e.g. behind a proxy.
``trustEmail``
    Treat the provider's ``email`` as verified when it sends no ``email_verified`` claim
    (plain OAuth2 providers that only return verified addresses). Default ``false``.
``extra``
    Extra authorization request parameters (string values), e.g. ``{"prompt": "login"}``.

Endpoint URLs must be ``https``; ``http`` is accepted only for loopback hosts (tests and
local development).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_URL_KEYS = ("issuer", "authURL", "tokenURL", "userInfoURL", "jwksURL", "redirectURL")
_KNOWN_KEYS = frozenset(
    {
        "name",
        "displayName",
        "clientId",
        "clientSecret",
        "scopes",
        "pkce",
        "trustEmail",
        "extra",
        *_URL_KEYS,
    }
)
_OIDC_SCOPES = ("openid", "email", "profile")
_OAUTH2_SCOPES = ("email",)
_LOOPBACK_NAMES = frozenset({"localhost"})


class ProviderConfigError(ValueError):
    """A provider entry is invalid; the message names the entry and the key."""


@dataclass(frozen=True)
class OAuth2ProviderConfig:
    """One configured provider (see the module documentation for the keys)."""

    name: str
    display_name: str
    client_id: str
    client_secret: str = ""
    issuer: str = ""
    auth_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    jwks_url: str = ""
    redirect_url: str = ""
    scopes: tuple[str, ...] = _OIDC_SCOPES
    pkce: bool = True
    trust_email: bool = False
    extra: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def is_oidc(self) -> bool:
        """Whether ID tokens are expected and validated (an issuer is configured)."""
        return bool(self.issuer)


def parse_providers(text: str) -> tuple[OAuth2ProviderConfig, ...]:
    """Parse and validate the ``--oauth2-providers`` value.

    Args:
        text: A JSON array of provider objects; empty or blank means none.

    Returns:
        The providers in the given order.

    Raises:
        ProviderConfigError: On invalid JSON, a non-array, an invalid entry or a duplicate
            name; the message says which entry and key.
    """
    if not text.strip():
        return ()
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProviderConfigError(f"not valid JSON ({exc.msg})") from None
    if not isinstance(decoded, list):
        raise ProviderConfigError("must be a JSON array of provider objects")
    providers: list[OAuth2ProviderConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(decoded):
        provider = _provider(index, item)
        if provider.name in seen:
            raise ProviderConfigError(f'element {index}: duplicate provider name "{provider.name}"')
        seen.add(provider.name)
        providers.append(provider)
    return tuple(providers)


def _provider(index: int, item: object) -> OAuth2ProviderConfig:
    if not isinstance(item, dict):
        raise ProviderConfigError(f"element {index} is not a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ProviderConfigError(f'element {index} has no "name"')
    where = f'element {index} ("{name}")'
    if not _NAME.fullmatch(name):
        raise ProviderConfigError(
            f'{where}: "name" must be 1-32 lowercase letters, digits, "-" or "_", '
            "starting with a letter or digit"
        )
    unknown = sorted(set(item) - _KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(_KNOWN_KEYS))
        raise ProviderConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {known})")
    urls = {key: _url(where, key, item.get(key)) for key in _URL_KEYS}
    client_id = _text(where, "clientId", item.get("clientId"))
    if not client_id:
        raise ProviderConfigError(f'{where}: "clientId" is required')
    issuer = urls["issuer"].rstrip("/")
    if not issuer:
        missing = [k for k in ("authURL", "tokenURL", "userInfoURL") if not urls[k]]
        if missing:
            raise ProviderConfigError(
                f'{where}: without "issuer" (OpenID Connect discovery) the keys '
                f"{', '.join(missing)} are required"
            )
    default_scopes = _OIDC_SCOPES if issuer else _OAUTH2_SCOPES
    return OAuth2ProviderConfig(
        name=name,
        display_name=_text(where, "displayName", item.get("displayName")) or name,
        client_id=client_id,
        client_secret=_text(where, "clientSecret", item.get("clientSecret")),
        issuer=issuer,
        auth_url=urls["authURL"],
        token_url=urls["tokenURL"],
        userinfo_url=urls["userInfoURL"],
        jwks_url=urls["jwksURL"],
        redirect_url=urls["redirectURL"],
        scopes=_scopes(where, item.get("scopes"), default_scopes),
        pkce=_flag(where, "pkce", item.get("pkce"), default=True),
        trust_email=_flag(where, "trustEmail", item.get("trustEmail"), default=False),
        extra=_extra(where, item.get("extra")),
    )


def _text(where: str, key: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProviderConfigError(f'{where}: "{key}" must be a string')
    return value.strip()


def _flag(where: str, key: str, value: object, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ProviderConfigError(f'{where}: "{key}" must be true or false')
    return value


def _scopes(where: str, value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise ProviderConfigError(f'{where}: "scopes" must be a list of non-empty strings')
    if any(" " in s.strip() for s in value):
        raise ProviderConfigError(f'{where}: "scopes" entries must not contain spaces')
    return tuple(s.strip() for s in value)


def _extra(where: str, value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ProviderConfigError(f'{where}: "extra" must be an object of string values')
    reserved = {"state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri"}
    clash = sorted(set(value) & reserved)
    if clash:
        raise ProviderConfigError(f'{where}: "extra" must not set {", ".join(clash)}')
    return tuple(sorted(value.items()))


def _url(where: str, key: str, value: object) -> str:
    text = _text(where, key, value)
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ProviderConfigError(f'{where}: "{key}" must be an absolute https URL, got {text!r}')
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ProviderConfigError(
            f'{where}: "{key}" must use https (http is only allowed for loopback hosts)'
        )
    if parts.fragment:
        raise ProviderConfigError(f'{where}: "{key}" must not contain a fragment')
    return text


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
