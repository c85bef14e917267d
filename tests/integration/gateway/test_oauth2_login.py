"""OAuth2 sign-in end to end: a real OpenID Connect provider (node oidc-provider), a real
QPI server, and a browser walked through both with httpx (login form, consent, redirects,
cookies)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests.support.oidc import OidcProvider, provider_sign_in

PROVIDER = "local"


@dataclass
class Env:
    """A QPI server whose users may sign in at ``provider``."""

    server: object
    provider: OidcProvider

    @property
    def base(self) -> str:
        return self.server.http_url

    def browser(self) -> httpx.Client:
        return httpx.Client(timeout=30, follow_redirects=False)

    def start(self, browser: httpx.Client) -> str:
        """Open the sign-in button's URL; return where QPI sends the browser."""
        methods = browser.get(f"{self.base}/api/collections/users/auth-methods").json()
        (button,) = methods["oauth2"]["providers"]
        resp = browser.get(self.base + button["authURL"])
        assert resp.status_code == 302, resp.text
        return resp.headers["location"]

    def callback(self, browser: httpx.Client, url: str) -> dict[str, list[str]]:
        """Deliver the provider's redirect; return the dashboard landing URL's query."""
        resp = browser.get(url)
        assert resp.status_code == 302, resp.text
        landing = urlsplit(resp.headers["location"])
        assert landing.path == "/dashboard/"
        assert landing.fragment == "overview"
        return parse_qs(landing.query)

    def sign_in(self, login: str) -> dict[str, list[str]]:
        with self.browser() as browser:
            url = provider_sign_in(browser, self.start(browser), login, self.base)
            return self.callback(browser, url)


@pytest.fixture
def oauth2_env(
    server_factory: Callable[..., object], tmp_path: Path
) -> Iterator[Callable[..., Env]]:
    providers: list[OidcProvider] = []

    def make(allow_signup: bool) -> Env:
        provider = OidcProvider(tmp_path)
        providers.append(provider)
        server = server_factory(
            allow_signup=allow_signup,
            oauth2_providers=json.dumps([provider.provider_config(PROVIDER)]),
        )
        provider.start([f"{server.http_url}/api/oauth2/{PROVIDER}/callback"])
        return Env(server, provider)

    yield make
    for provider in providers:
        provider.stop()


def exchange(env: Env, code: str) -> httpx.Response:
    return httpx.post(f"{env.base}/api/oauth2/exchange", json={"code": code}, timeout=30)


@pytest.mark.timeout(300)
def test_sign_in_creates_then_reuses_the_account(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    landing = env.sign_in("alice@example.com")
    assert "oauth2_error" not in landing, landing
    (code,) = landing["oauth2_code"]

    session = exchange(env, code)
    assert session.status_code == 200, session.text
    body = session.json()
    assert body["record"]["email"] == "alice@example.com"
    assert body["record"]["qpu_seconds"] == 0
    assert body["record"]["collectionName"] == "users"
    me = httpx.get(
        f"{env.base}/api/collections/users/records/{body['record']['id']}",
        headers={"Authorization": body["token"]},
    )
    assert me.status_code == 200, me.text

    again = exchange(env, code)  # single use
    assert again.status_code == 401
    assert again.json()["status"] == 401

    (second,) = env.sign_in("alice@example.com")["oauth2_code"]
    assert exchange(env, second).json()["record"]["id"] == body["record"]["id"]


@pytest.mark.timeout(300)
def test_existing_user_signs_in_by_verified_email_without_signup(
    oauth2_env: Callable[..., Env],
) -> None:
    env = oauth2_env(allow_signup=False)
    user_id, _ = env.server.create_user("carol@example.com")
    (code,) = env.sign_in("carol@example.com")["oauth2_code"]
    record = exchange(env, code).json()["record"]
    assert record["id"] == user_id


@pytest.mark.timeout(300)
def test_user_not_allowed_to_sign_up_gets_an_error(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=False)
    landing = env.sign_in("mallory@example.com")
    assert "oauth2_code" not in landing
    (error,) = landing["oauth2_error"]
    assert "sign-up is disabled" in error
    users = httpx.get(
        f"{env.base}/api/collections/users/records",
        headers={"Authorization": env.server.admin_token},
    ).json()
    assert all(u["email"] != "mallory@example.com" for u in users["items"])


@pytest.mark.timeout(300)
def test_unverified_email_is_not_matched(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    env.server.create_user("bob@example.com")
    (error,) = env.sign_in("unverified+bob@example.com")["oauth2_error"]
    assert "verified e-mail" in error


def _with_param(url: str, key: str, value: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query[key] = value
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.timeout(300)
def test_state_mismatch_is_refused(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    with env.browser() as browser:
        url = provider_sign_in(browser, env.start(browser), "dave@example.com", env.base)
        landing = env.callback(browser, _with_param(url, "state", "forged-state"))
    (error,) = landing["oauth2_error"]
    assert "state does not match" in error


@pytest.mark.timeout(300)
def test_callback_from_another_browser_is_refused(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    with env.browser() as browser:
        url = provider_sign_in(browser, env.start(browser), "erin@example.com", env.base)
    with env.browser() as other:  # no sign-in cookie: a forged callback (login CSRF)
        (error,) = env.callback(other, url)["oauth2_error"]
    assert "not started in this browser" in error


@pytest.mark.timeout(300)
def test_bad_code_is_refused_by_the_provider(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    with env.browser() as browser:
        url = provider_sign_in(browser, env.start(browser), "frank@example.com", env.base)
        landing = env.callback(browser, _with_param(url, "code", "not-a-real-code"))
    (error,) = landing["oauth2_error"]
    assert "refused the authorization code" in error
    assert exchange(env, "not-a-real-code").status_code == 401


@pytest.mark.timeout(300)
def test_unknown_provider_and_foreign_return_path(oauth2_env: Callable[..., Env]) -> None:
    env = oauth2_env(allow_signup=True)
    missing = httpx.get(f"{env.base}/api/oauth2/nope/authorize")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    foreign = httpx.get(
        f"{env.base}/api/oauth2/{PROVIDER}/authorize", params={"redirect": "//evil.example/"}
    )
    assert foreign.status_code == 400
    assert "redirect" in foreign.json()["data"]
