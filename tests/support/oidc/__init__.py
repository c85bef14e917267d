"""A real OpenID Connect provider (the npm ``oidc-provider``) for OAuth2 login tests.

``npm ci`` installs it from the committed lock file into this folder (``make test`` does
it; :func:`ensure_installed` does it for a targeted run). The provider listens on a socket
the test binds first (port 0, handed over as a file descriptor), so the issuer URL is
known before the QPI server starts and no port is ever guessed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

HERE = Path(__file__).resolve().parent
CLIENT_ID = "qpi-test-client"
CLIENT_SECRET = "qpi-test-client-secret"  # noqa: S105 - a throwaway test client


def ensure_installed() -> None:
    """Run ``npm ci`` here unless ``node_modules`` already holds oidc-provider."""
    if (HERE / "node_modules" / "oidc-provider" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    assert npm, "npm is required for the OAuth2 login tests"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=HERE,
        check=True,
        timeout=600,
    )


class OidcProvider:
    """One provider process; ``issuer`` is usable before :meth:`start`."""

    def __init__(self, log_dir: Path) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.issuer = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._log = log_dir / "oidc-provider.log"
        self._process: subprocess.Popen[bytes] | None = None

    def provider_config(self, name: str = "local", **extra: object) -> dict[str, object]:
        """The ``--oauth2-providers`` entry for this provider."""
        return {
            "name": name,
            "displayName": "Lab IdP",
            "issuer": self.issuer,
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            **extra,
        }

    def start(self, redirect_uris: list[str]) -> OidcProvider:
        """Start node with the client's registered redirect URIs; wait until it answers."""
        ensure_installed()
        fd = self._socket.fileno()
        env = {
            **os.environ,
            "OIDC_FD": str(fd),
            "OIDC_ISSUER": self.issuer,
            "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                ["node", str(HERE / "provider.mjs")],
                cwd=HERE,
                env=env,
                pass_fds=(fd,),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        url = f"{self.issuer}/.well-known/openid-configuration"
        while True:
            assert self._process.poll() is None, self._log.read_text()
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "oidc-provider did not start"
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process and close the socket."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
        self._socket.close()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def _form_action(page: httpx.Response) -> str:
    found = _FORM_ACTION.search(page.text)
    assert found, f"no form on {page.url}: {page.text[:300]}"
    return str(page.url.join(found.group(1).replace("&amp;", "&")))


def _follow(browser: httpx.Client, resp: httpx.Response, stop_at: str) -> httpx.Response | str:
    """Follow redirects until one leaves for ``stop_at`` (returned as a URL) or a page."""
    for _ in range(10):
        if not resp.is_redirect:
            return resp
        target = str(resp.url.join(resp.headers["location"]))
        if target.startswith(stop_at):
            return target
        resp = browser.get(target)
    raise AssertionError("too many redirects")


def provider_sign_in(browser: httpx.Client, authorization_url: str, login: str, back: str) -> str:
    """Sign in at the provider as a person would (login form, then consent).

    Args:
        browser: A client keeping cookies, with redirects off.
        authorization_url: Where QPI's authorize route sent the browser.
        login: The account name typed into the provider's login form.
        back: URL prefix of QPI's callback, where the walk stops.

    Returns:
        The callback URL (with ``code`` and ``state``) the provider redirects to.
    """
    page = _follow(browser, browser.get(authorization_url), back)
    for fields in ({"prompt": "login", "login": login, "password": "any"}, {"prompt": "consent"}):
        if isinstance(page, str):
            return page
        assert page.status_code == 200, (page.status_code, page.text[:300])
        page = _follow(browser, browser.post(_form_action(page), data=fields), back)
    assert isinstance(page, str), "the provider did not redirect back"
    assert urlsplit(page).path.endswith("/callback")
    return page
