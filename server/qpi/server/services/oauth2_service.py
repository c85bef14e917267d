"""OAuth2 sign-in: authorization code + PKCE, then a one-time code for the browser.

Flow (the gateway only translates):

1. :meth:`OAuth2Service.start` makes a state, a nonce and a PKCE verifier, and returns
   the provider's authorization URL plus a *flow token*: those values signed (HS256, a
   key of its own in ``server_secrets``) with a 10-minute expiry. The browser keeps it in
   an HttpOnly cookie, so a callback can only complete a login its own browser started.
2. :meth:`OAuth2Service.complete` checks the callback's state against the flow token,
   exchanges the code (with the verifier and the client secret), validates the ID token
   (:mod:`qpi.server.security.oidc`) or reads userinfo, finds or creates the user and
   stores a single-use login code (SHA-256 only, 60 s).
3. :meth:`OAuth2Service.exchange` consumes the code once and issues a session.

Account policy: a provider identity (provider, subject) once linked always signs in the
same user. An unlinked identity is linked to the user with the same e-mail only when the
provider vouches for that address (``email_verified``, or ``trustEmail``). Without such a
user a new one (zero balance, no password) is created only when ``--allow-signup`` is on.
Administrators never sign in through OAuth2; they use their password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt

from qpi.server.domain.clock import Clock
from qpi.server.domain.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from qpi.server.domain.models import User
from qpi.server.security.oauth2_providers import OAuth2ProviderConfig
from qpi.server.security.oidc import (
    IdTokenError,
    SigningKeyNotFoundError,
    pkce_challenge,
    validate_id_token,
)
from qpi.server.services.auth_service import AuthService
from qpi.server.services.database import Database
from qpi.server.services.oauth2_client import Endpoints, OAuth2Http
from qpi.server.store.accounts import AccountRepository
from qpi.server.store.base import DuplicateKeyError
from qpi.server.store.oauth2_logins import OAuth2LoginRepository

FLOW_SECONDS = 600.0
CODE_SECONDS = 60.0
DEFAULT_RETURN_PATH = "/dashboard/"
MAX_RETURN_PATH = 512
_FLOW_SECRET = "oauth2_flow_key"  # noqa: S105 - the row name, not the key
_FLOW_AUDIENCE = "qpi-oauth2-flow"
# Not an Argon2 hash, so no password ever matches it (verify_password returns False).
_NO_PASSWORD_PREFIX = "oauth2-only$"  # noqa: S105


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and the flow token it must bring back."""

    authorization_uri: str
    flow_token: str
    expires_at: datetime


@dataclass(frozen=True)
class LoginCode:
    """The one-time code the browser trades for a session."""

    code: str
    expires_at: datetime
    return_path: str


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str
    email_verified: bool
    name: str


def _state_error(message: str) -> InvalidArgumentError:
    return InvalidArgumentError("OAUTH2_STATE_INVALID", message)


def check_return_path(path: str) -> str:
    """A local path to return the browser to (never another site: no open redirect)."""
    path = path or DEFAULT_RETURN_PATH
    parts = urlsplit(path)
    if (
        len(path) > MAX_RETURN_PATH
        or not path.startswith("/")
        or path.startswith("//")
        or parts.scheme
        or parts.netloc
        or any(c in path for c in "\\\r\n\t")
    ):
        raise InvalidArgumentError(
            "INVALID_FIELD",
            "return_path must be a local path such as /dashboard/.",
            field="return_path",
        )
    return path


def _check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(uri) > 2048:
        raise InvalidArgumentError(
            "INVALID_FIELD", "redirect_uri must be an absolute http(s) URL.", field="redirect_uri"
        )
    return uri


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class OAuth2Service:
    """The OAuth2 use cases; HTTP calls are async, database work runs on the DB threads."""

    def __init__(
        self,
        db: Database,
        logins: OAuth2LoginRepository,
        accounts: AccountRepository,
        clock: Clock,
        providers: tuple[OAuth2ProviderConfig, ...],
        http: OAuth2Http,
        auth: AuthService,
        allow_signup: bool,
    ) -> None:
        self._db = db
        self._logins = logins
        self._clock = clock
        self._providers = {p.name: p for p in providers}
        self._http = http
        self._auth = auth
        self._allow_signup = allow_signup
        self._flow_key = accounts.secret(_FLOW_SECRET, secrets.token_hex(32)) if providers else ""

    def providers(self) -> list[OAuth2ProviderConfig]:
        """The configured providers, in configuration order."""
        return list(self._providers.values())

    def _provider(self, name: str) -> OAuth2ProviderConfig:
        found = self._providers.get(name)
        if found is None:
            raise NotFoundError(
                "OAUTH2_PROVIDER_NOT_FOUND",
                f"No OAuth2 provider named {name[:64]!r} is configured.",
                metadata={"provider": name[:64]},
            )
        return found

    # -- 1. start ---------------------------------------------------------------------

    async def start(self, name: str, redirect_uri: str, return_path: str) -> LoginStart:
        """Begin a login with provider ``name`` (see the module documentation)."""
        provider = self._provider(name)
        return_path = check_return_path(return_path)
        redirect_uri = _check_redirect_uri(provider.redirect_url or redirect_uri)
        endpoints = await self._http.endpoints(provider)
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48) if provider.pkce else ""
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            **dict(provider.extra),
        }
        if provider.is_oidc:
            params["nonce"] = nonce
        if verifier:
            params["code_challenge"] = pkce_challenge(verifier)
            params["code_challenge_method"] = "S256"
        separator = "&" if "?" in endpoints.authorization else "?"
        now = self._clock.now()
        expires = now + timedelta(seconds=FLOW_SECONDS)
        claims = {
            "aud": _FLOW_AUDIENCE,
            "prv": provider.name,
            "st": state,
            "nc": nonce,
            "cv": verifier,
            "ru": redirect_uri,
            "rp": return_path,
            "exp": int(expires.timestamp()),
        }
        return LoginStart(
            authorization_uri=endpoints.authorization + separator + urlencode(params),
            flow_token=jwt.encode(claims, self._flow_key, algorithm="HS256"),
            expires_at=expires,
        )

    # -- 2. complete ------------------------------------------------------------------

    async def complete(self, name: str, code: str, state: str, flow_token: str) -> LoginCode:
        """Finish a login from the provider's callback; returns the one-time code."""
        provider = self._provider(name)
        flow = self._verify_flow(provider, state, flow_token)
        if not code:
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR", "The provider sent no authorization code."
            )
        endpoints = await self._http.endpoints(provider)
        tokens = await self._http.exchange_code(
            provider, endpoints, code=code, redirect_uri=flow["ru"], verifier=flow["cv"]
        )
        identity = await self._identity(provider, endpoints, tokens, flow["nc"])
        user = await self._db.run(self._resolve_user, provider, identity)
        login_code = secrets.token_urlsafe(32)
        expires = await self._db.run(self._store_code, user.id, _hash(login_code))
        return LoginCode(code=login_code, expires_at=expires, return_path=flow["rp"])

    def _verify_flow(
        self, provider: OAuth2ProviderConfig, state: str, flow_token: str
    ) -> dict[str, str]:
        if not flow_token:
            raise _state_error(
                "This sign-in was not started in this browser (no sign-in cookie); start again."
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                flow_token,
                self._flow_key,
                algorithms=["HS256"],
                audience=_FLOW_AUDIENCE,
                options={"verify_exp": False, "require": ["exp"]},
            )
        except jwt.PyJWTError:
            raise _state_error("The sign-in cookie is invalid; start again.") from None
        if int(claims["exp"]) <= self._clock.now().timestamp():
            raise _state_error("The sign-in took too long; start again.")
        if claims.get("prv") != provider.name or not hmac.compare_digest(
            str(claims.get("st", "")), state
        ):
            raise _state_error(
                "The sign-in state does not match the one this browser started; start again."
            )
        return {key: str(claims.get(key, "")) for key in ("nc", "cv", "ru", "rp")}

    async def _identity(
        self,
        provider: OAuth2ProviderConfig,
        endpoints: Endpoints,
        tokens: dict[str, Any],
        nonce: str,
    ) -> Identity:
        claims: dict[str, Any] = {}
        id_token = tokens.get("id_token")
        if provider.is_oidc:
            if not isinstance(id_token, str):
                raise UnauthenticatedError(
                    "OAUTH2_PROVIDER_ERROR", "The provider returned no ID token."
                )
            claims = await self._id_token_claims(provider, endpoints, id_token, nonce)
        if endpoints.userinfo and (not claims or "email" not in claims):
            info = await self._http.userinfo(provider, endpoints.userinfo, tokens["access_token"])
            subject = info.get("sub", info.get("id"))
            if claims and str(subject) != str(claims["sub"]):
                raise UnauthenticatedError(
                    "OAUTH2_PROVIDER_ERROR", "The provider's userinfo is for another subject."
                )
            claims = {**info, **claims, "sub": str(claims.get("sub") or subject or "")}
        subject = str(claims.get("sub") or claims.get("id") or "")
        if not subject or len(subject) > 255:
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR", "The provider did not identify the user."
            )
        email = claims.get("email")
        verified = claims.get("email_verified")
        if verified is None:
            verified = provider.trust_email
        return Identity(
            subject=subject,
            email=email.strip().lower() if isinstance(email, str) else "",
            email_verified=verified is True or verified == "true",
            name=str(claims.get("name") or "")[:200],
        )

    async def _id_token_claims(
        self, provider: OAuth2ProviderConfig, endpoints: Endpoints, token: str, nonce: str
    ) -> dict[str, Any]:
        if not endpoints.jwks:
            raise UnauthenticatedError(
                "OAUTH2_PROVIDER_ERROR", "The provider publishes no key set (jwks_uri)."
            )
        for refresh in (False, True):
            keys = await self._http.jwks(provider, endpoints.jwks, refresh=refresh)
            try:
                return validate_id_token(
                    token, keys, issuer=provider.issuer, client_id=provider.client_id, nonce=nonce
                )
            except SigningKeyNotFoundError:
                if refresh:
                    raise UnauthenticatedError(
                        "OAUTH2_PROVIDER_ERROR", "The ID token is signed with an unknown key."
                    ) from None
            except IdTokenError as exc:
                raise UnauthenticatedError(
                    "OAUTH2_PROVIDER_ERROR", f"The provider's ID token was refused: {exc}."
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _resolve_user(self, provider: OAuth2ProviderConfig, identity: Identity) -> User:
        """Find the linked user, or link/create one by verified e-mail (module policy)."""
        for attempt in range(2):
            user = self._logins.linked_user(provider.name, identity.subject)
            if user is None:
                try:
                    user = self._link(provider, identity)
                except DuplicateKeyError:  # the same identity or e-mail signed in at once
                    if attempt:
                        raise
                    continue
            if user.is_superuser:
                raise PermissionDeniedError(
                    "PERMISSION_DENIED",
                    "Administrators sign in with their password, not through OAuth2.",
                )
            return user
        raise AssertionError("unreachable")  # pragma: no cover

    def _link(self, provider: OAuth2ProviderConfig, identity: Identity) -> User:
        if not identity.email or "@" not in identity.email or not identity.email_verified:
            raise PermissionDeniedError(
                "OAUTH2_EMAIL_UNVERIFIED",
                f"{provider.display_name} did not confirm a verified e-mail address for this "
                "account, so it cannot be matched to a QPI user.",
                metadata={"provider": provider.name},
            )
        new_hash = _NO_PASSWORD_PREFIX + secrets.token_hex(24) if self._allow_signup else None
        user = self._logins.link(
            provider.name, identity.subject, identity.email, identity.name, new_hash
        )
        if user is None:
            raise PermissionDeniedError(
                "SIGNUP_DISABLED",
                f"No QPI account uses {identity.email} and sign-up is disabled on this "
                "server; ask an administrator to create your account.",
                metadata={"email": identity.email},
            )
        return user

    def _store_code(self, user_id: str, code_hash: str) -> datetime:
        now = self._clock.now()
        expires = now + timedelta(seconds=CODE_SECONDS)
        self._logins.store_code(code_hash, user_id, expires, now)
        return expires

    # -- 3. exchange ------------------------------------------------------------------

    def exchange(self, login_code: str) -> tuple[str, User, datetime]:
        """Consume a login code (once) and issue a session token for its user."""
        invalid = UnauthenticatedError(
            "OAUTH2_CODE_INVALID", "The sign-in code is unknown, already used or expired."
        )
        if not login_code or len(login_code) > 256:
            raise invalid
        found = self._logins.consume_code(_hash(login_code))
        if found is None or found[1] <= self._clock.now():
            raise invalid
        user_id = found[0]
        return self._auth.issue_for(user_id)
