"""`qpi superuser upsert`: an administrator created or reset straight in the database.

Kept apart from :mod:`qpi.server.app` so the command loads only the store and the account
service, not the whole server (gRPC, REST, dashboard): it runs before every `make demo`.
"""

from __future__ import annotations

from qpi.server.domain.clock import SystemClock
from qpi.server.services.account_service import AccountService
from qpi.server.settings import ServerSettings
from qpi.server.store.accounts import SqlAccountRepository
from qpi.server.store.database import create_db_engine, migrate


def upsert_superuser(settings: ServerSettings, email: str, password: str) -> str:
    """Creates or updates an administrator (migrating the database first)."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(settings.effective_database_url)
    migrate(engine)
    try:
        accounts = SqlAccountRepository(engine)
        user = AccountService(accounts, SystemClock(), allow_signup=False).upsert_superuser(
            email, password
        )
    finally:
        engine.dispose()
    return f"Superuser {user.email} saved."
