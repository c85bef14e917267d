"""Who is calling."""

from __future__ import annotations

from dataclasses import dataclass

from qpi.server.domain.errors import PermissionDeniedError


@dataclass(frozen=True)
class Principal:
    """An authenticated user (administrators have `is_superuser`)."""

    user_id: str
    email: str
    is_superuser: bool

    def require_admin(self) -> None:
        """Raises unless the caller is an administrator."""
        if not self.is_superuser:
            raise PermissionDeniedError("ADMIN_ONLY", "Admin access required.")

    def can_see(self, owner_id: str) -> bool:
        """Whether the caller may see a record owned by `owner_id`."""
        return self.is_superuser or owner_id == self.user_id
