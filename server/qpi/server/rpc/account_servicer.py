"""AccountService: login, users, balances, API tokens."""

from __future__ import annotations

from typing import Any

import grpc

from qpi.server.domain.errors import InvalidArgumentError
from qpi.server.rpc import convert
from qpi.server.rpc.credentials import Authenticator, client_address
from qpi.server.rpc.errors import unary
from qpi.server.rpc.list_query import page_of, request_query
from qpi.server.rpc.pages import messages
from qpi.server.security.passwords import PasswordWork
from qpi.server.services.account_service import AccountService, check_password
from qpi.server.services.auth_service import AuthService
from qpi.server.services.database import Database
from qpi.server.services.login_service import LoginService
from qpi.server.services.oauth2_service import OAuth2Service
from qpi.v1 import account_service_pb2 as pb
from qpi.v1 import account_service_pb2_grpc

Ctx = grpc.aio.ServicerContext[Any, Any]


class AccountServicer(account_service_pb2_grpc.AccountServiceServicer):
    """Thin adapter over AuthService and AccountService."""

    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        auth_service: AuthService,
        accounts: AccountService,
        logins: LoginService,
        passwords: PasswordWork,
        oauth2: OAuth2Service,
    ) -> None:
        self._db = db
        self._auth = auth
        self._auth_service = auth_service
        self._accounts = accounts
        self._logins = logins
        self._passwords = passwords
        self._oauth2 = oauth2

    async def _hash(self, password: str) -> str:
        # Checked first so no hashing work is spent on a password that will be refused.
        check_password(password)
        return await self._passwords.hash(password)

    @unary
    async def Login(self, request: pb.LoginRequest, context: Ctx) -> pb.LoginResponse:
        token, user, expires = await self._logins.login(
            request.email, request.password, request.superuser, client_address(context)
        )
        return pb.LoginResponse(
            token=token, user=convert.user(user), expire_time=convert.ts(expires)
        )

    @unary
    async def RefreshSession(
        self, request: pb.RefreshSessionRequest, context: Ctx
    ) -> pb.RefreshSessionResponse:
        who = await self._auth.principal(context)
        token, user, expires = await self._db.run(self._auth_service.refresh, who)
        return pb.RefreshSessionResponse(
            token=token, user=convert.user(user), expire_time=convert.ts(expires)
        )

    @unary
    async def GetCurrentUser(
        self, request: pb.GetCurrentUserRequest, context: Ctx
    ) -> pb.GetCurrentUserResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._accounts.get_user, who, who.user_id)
        return pb.GetCurrentUserResponse(user=convert.user(row))

    @unary
    async def ListUsers(self, request: pb.ListUsersRequest, context: Ctx) -> pb.ListUsersResponse:
        who = await self._auth.principal(context)
        query, key = request_query(request)
        query, finish = page_of(request, query, f"users|{who.user_id}|{key}")
        rows, total = await self._db.run(self._accounts.query_users, who, query)
        total_size, capped, token = finish(len(rows), total)
        return pb.ListUsersResponse(
            users=await messages(rows, convert.user),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetUser(self, request: pb.GetUserRequest, context: Ctx) -> pb.GetUserResponse:
        who = await self._auth.principal(context)
        return pb.GetUserResponse(
            user=convert.user(await self._db.run(self._accounts.get_user, who, request.id))
        )

    @unary
    async def CreateUser(
        self, request: pb.CreateUserRequest, context: Ctx
    ) -> pb.CreateUserResponse:
        who = await self._auth.optional_principal(context)
        row = await self._db.run(
            self._accounts.create_user,
            who,
            request.email,
            request.password,
            request.name,
            request.qpu_seconds,
            await self._hash(request.password),
        )
        return pb.CreateUserResponse(user=convert.user(row))

    @unary
    async def UpdateUser(
        self, request: pb.UpdateUserRequest, context: Ctx
    ) -> pb.UpdateUserResponse:
        who = await self._auth.principal(context)
        values: dict[str, object] = {
            "name": request.user.name,
            "qpu_seconds": request.user.qpu_seconds,
            "password": request.password,
        }
        paths = list(request.update_mask.paths)
        unknown = [p for p in paths if p not in values]
        if unknown:
            raise InvalidArgumentError(
                "INVALID_FIELD",
                f"Cannot update field(s): {', '.join(unknown)}.",
                field="update_mask",
            )
        hashed = await self._hash(request.password) if "password" in paths else None
        row = await self._db.run(
            self._accounts.update_user, who, request.user.id, {p: values[p] for p in paths}, hashed
        )
        return pb.UpdateUserResponse(user=convert.user(row))

    @unary
    async def DeleteUser(
        self, request: pb.DeleteUserRequest, context: Ctx
    ) -> pb.DeleteUserResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._accounts.delete_user, who, request.id)
        return pb.DeleteUserResponse()

    @unary
    async def CreateApiToken(
        self, request: pb.CreateApiTokenRequest, context: Ctx
    ) -> pb.CreateApiTokenResponse:
        who = await self._auth.principal(context)
        expires = (
            convert.from_ts(request.expire_time, "expire_time")
            if request.HasField("expire_time")
            else None
        )
        row, raw = await self._db.run(
            self._accounts.create_api_token,
            who,
            request.name,
            expires,
            request.token_sha256,
            request.token,
        )
        return pb.CreateApiTokenResponse(api_token=convert.api_token(row), token=raw)

    @unary
    async def ListApiTokens(
        self, request: pb.ListApiTokensRequest, context: Ctx
    ) -> pb.ListApiTokensResponse:
        who = await self._auth.principal(context)
        all_users = request.all_users or (request.all_visible and who.is_superuser)
        query, key = request_query(request)
        query, finish = page_of(request, query, f"tokens|{who.user_id}|{all_users}|{key}")
        rows, total = await self._db.run(
            lambda: self._accounts.query_api_tokens(who, query, all_users=all_users)
        )
        total_size, capped, token = finish(len(rows), total)
        return pb.ListApiTokensResponse(
            api_tokens=await messages(rows, convert.api_token),
            total_size=total_size,
            total_size_capped=capped,
            next_page_token=token,
        )

    @unary
    async def GetApiToken(
        self, request: pb.GetApiTokenRequest, context: Ctx
    ) -> pb.GetApiTokenResponse:
        who = await self._auth.principal(context)
        row = await self._db.run(self._accounts.get_api_token, who, request.id)
        return pb.GetApiTokenResponse(api_token=convert.api_token(row))

    @unary
    async def UpdateApiToken(
        self, request: pb.UpdateApiTokenRequest, context: Ctx
    ) -> pb.UpdateApiTokenResponse:
        who = await self._auth.principal(context)
        t = request.api_token
        values: dict[str, object] = {
            "name": t.name,
            "expire_time": convert.from_ts(t.expire_time, "expire_time")
            if t.HasField("expire_time")
            else None,
        }
        fields = {p: values[p] for p in request.update_mask.paths if p in values}
        row = await self._db.run(self._accounts.update_api_token, who, t.id, fields)
        return pb.UpdateApiTokenResponse(api_token=convert.api_token(row))

    @unary
    async def DeleteApiToken(
        self, request: pb.DeleteApiTokenRequest, context: Ctx
    ) -> pb.DeleteApiTokenResponse:
        who = await self._auth.principal(context)
        await self._db.run(self._accounts.delete_api_token, who, request.id)
        return pb.DeleteApiTokenResponse()

    @unary
    async def ListOAuth2Providers(
        self, request: pb.ListOAuth2ProvidersRequest, context: Ctx
    ) -> pb.ListOAuth2ProvidersResponse:
        return pb.ListOAuth2ProvidersResponse(
            providers=[
                pb.OAuth2Provider(name=p.name, display_name=p.display_name)
                for p in self._oauth2.providers()
            ]
        )

    @unary
    async def StartOAuth2Login(
        self, request: pb.StartOAuth2LoginRequest, context: Ctx
    ) -> pb.StartOAuth2LoginResponse:
        started = await self._oauth2.start(
            request.provider, request.redirect_uri, request.return_path
        )
        return pb.StartOAuth2LoginResponse(
            authorization_uri=started.authorization_uri,
            flow_token=started.flow_token,
            expire_time=convert.ts(started.expires_at),
        )

    @unary
    async def CompleteOAuth2Login(
        self, request: pb.CompleteOAuth2LoginRequest, context: Ctx
    ) -> pb.CompleteOAuth2LoginResponse:
        done = await self._oauth2.complete(
            request.provider, request.code, request.state, request.flow_token
        )
        return pb.CompleteOAuth2LoginResponse(
            login_code=done.code,
            expire_time=convert.ts(done.expires_at),
            return_path=done.return_path,
        )

    @unary
    async def ExchangeOAuth2LoginCode(
        self, request: pb.ExchangeOAuth2LoginCodeRequest, context: Ctx
    ) -> pb.ExchangeOAuth2LoginCodeResponse:
        token, user, expires = await self._db.run(self._oauth2.exchange, request.login_code)
        return pb.ExchangeOAuth2LoginCodeResponse(
            token=token, user=convert.user(user), expire_time=convert.ts(expires)
        )
