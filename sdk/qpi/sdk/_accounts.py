"""Login, users, balances, API tokens and server facts."""

from __future__ import annotations

import datetime as dt

from qpi.sdk._base import ClientBase, field_mask, to_timestamp
from qpi.sdk.models import ApiToken, User
from qpi.sdk.records import CreatedApiToken, LoginSession, ServerInfo
from qpi.v1 import account_pb2, account_service_pb2, admin_service_pb2


class AccountsMixin(ClientBase):
    """Methods of :class:`qpi.sdk.QPIClient` about accounts, tokens and the server."""

    def login(self, email: str, password: str, *, superuser: bool = False) -> LoginSession:
        """Exchanges e-mail and password for a session token and uses it from now on.

        Args:
            email: Account e-mail.
            password: Account password.
            superuser: Fail unless the account is an administrator.

        Raises:
            AuthenticationError: Wrong e-mail/password (reason ``INVALID_CREDENTIALS``).

        Example:
            >>> client = QPIClient("grpc://127.0.0.1:50051")
            >>> client.login("ada@example.org", "correct horse").user.email
            'ada@example.org'
        """
        request = account_service_pb2.LoginRequest(
            email=email, password=password, superuser=superuser
        )
        session = LoginSession._from_proto(self._unary(self._accounts.Login, request))
        self._token = session.token
        return session

    def auth_with_password(self, identity: str, password: str) -> LoginSession:
        """Alias of :meth:`login` kept for parity with the original ``qpi-client``."""
        return self.login(identity, password)

    def get_current_user(self) -> User:
        """Returns the authenticated user (with the current QPU-seconds balance)."""
        request = account_service_pb2.GetCurrentUserRequest()
        return User._from_proto(self._unary(self._accounts.GetCurrentUser, request).user)

    def list_users(self) -> list[User]:
        """Returns all users (administrators) or just the caller."""
        request = account_service_pb2.ListUsersRequest()
        return list(self._paginate(self._accounts.ListUsers, request, "users", User._from_proto))

    def get_user(self, user_id: str) -> User:
        """Returns a user (own record, or any for administrators)."""
        request = account_service_pb2.GetUserRequest(id=user_id)
        return User._from_proto(self._unary(self._accounts.GetUser, request).user)

    def create_user(
        self, email: str, password: str, *, name: str = "", qpu_seconds: float = 0.0
    ) -> User:
        """Creates a user (administrators; anyone when self-registration is enabled)."""
        request = account_service_pb2.CreateUserRequest(
            email=email, password=password, name=name, qpu_seconds=qpu_seconds
        )
        return User._from_proto(self._unary(self._accounts.CreateUser, request).user)

    def update_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        password: str | None = None,
        qpu_seconds: float | None = None,
    ) -> User:
        """Changes the given fields; only administrators may set ``qpu_seconds``."""
        user = account_pb2.User(id=user_id)
        paths: list[str] = []
        if name is not None:
            user.name = name
            paths.append("name")
        if qpu_seconds is not None:
            user.qpu_seconds = qpu_seconds
            paths.append("qpu_seconds")
        if password is not None:
            paths.append("password")
        request = account_service_pb2.UpdateUserRequest(
            user=user, update_mask=field_mask(*paths), password=password or ""
        )
        return User._from_proto(self._unary(self._accounts.UpdateUser, request).user)

    def allocate_qpu_time(self, user_id: str, seconds: float) -> User:
        """Sets a user's QPU-seconds balance (administrators).

        Example:
            >>> admin.allocate_qpu_time(user.id, 3600).qpu_seconds
            3600.0
        """
        return self.update_user(user_id, qpu_seconds=seconds)

    def delete_user(self, user_id: str) -> None:
        """Deletes a user (administrators)."""
        self._unary(self._accounts.DeleteUser, account_service_pb2.DeleteUserRequest(id=user_id))

    def create_api_token(
        self,
        name: str,
        *,
        expires: dt.datetime | str | None = None,
        token_sha256: str = "",
        token: str = "",
    ) -> CreatedApiToken:
        """Creates an API token for the caller; ``.token`` is the raw secret, shown once.

        To register a token you generated yourself instead, pass it as ``token`` or its
        SHA-256 hex digest as ``token_sha256``; ``.token`` is then empty. Either way it must
        have the server's format, ``qpi_`` followed by 64 lowercase hex characters (e.g.
        ``"qpi_" + secrets.token_hex(32)``): no other value ever authenticates.
        """
        request = account_service_pb2.CreateApiTokenRequest(
            name=name, token_sha256=token_sha256, token=token
        )
        if expires is not None:
            request.expire_time.CopyFrom(to_timestamp(expires))
        return CreatedApiToken._from_proto(self._unary(self._accounts.CreateApiToken, request))

    def list_api_tokens(self, *, all_users: bool = False) -> list[ApiToken]:
        """Returns the caller's tokens, newest first (administrators: optionally all)."""
        request = account_service_pb2.ListApiTokensRequest(all_users=all_users)
        return list(
            self._paginate(
                self._accounts.ListApiTokens, request, "api_tokens", ApiToken._from_proto
            )
        )

    def get_api_token(self, token_id: str) -> ApiToken:
        """Returns one token's metadata."""
        request = account_service_pb2.GetApiTokenRequest(id=token_id)
        return ApiToken._from_proto(self._unary(self._accounts.GetApiToken, request).api_token)

    def update_api_token(
        self,
        token_id: str,
        *,
        name: str | None = None,
        expires: dt.datetime | str | None = None,
        clear_expiry: bool = False,
    ) -> ApiToken:
        """Renames a token, changes its expiry, or (``clear_expiry``) makes it permanent."""
        token = account_pb2.ApiToken(id=token_id)
        paths: list[str] = []
        if name is not None:
            token.name = name
            paths.append("name")
        if expires is not None:
            token.expire_time.CopyFrom(to_timestamp(expires))
            paths.append("expire_time")
        elif clear_expiry:
            paths.append("expire_time")
        request = account_service_pb2.UpdateApiTokenRequest(
            api_token=token, update_mask=field_mask(*paths)
        )
        return ApiToken._from_proto(self._unary(self._accounts.UpdateApiToken, request).api_token)

    def delete_api_token(self, token_id: str) -> None:
        """Revokes a token; calls made with it fail from now on."""
        request = account_service_pb2.DeleteApiTokenRequest(id=token_id)
        self._unary(self._accounts.DeleteApiToken, request)

    def version(self) -> str:
        """Returns the server version string (administrators)."""
        request = admin_service_pb2.GetVersionRequest()
        version: str = self._unary(self._admin.GetVersion, request).version
        return version

    def server_info(self) -> ServerInfo:
        """Returns public server facts (version, CA fingerprint, login options)."""
        request = admin_service_pb2.GetServerInfoRequest()
        return ServerInfo._from_proto(self._unary(self._admin.GetServerInfo, request))
