"""The error catalogue matches qpi.v1.ErrorReason exactly."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from qpi.server.domain import errors
from qpi.server.domain.errors import (
    CATALOGUE,
    InvalidArgumentError,
    NotFoundError,
    QpiError,
    error_for,
    invalid_field,
)

PROTO = Path(__file__).resolve().parents[4] / "proto" / "qpi" / "v1" / "error_reason.proto"


def _proto_reasons() -> list[str]:
    text = PROTO.read_text(encoding="utf-8")
    names = re.findall(r"^\s*ERROR_REASON_([A-Z0-9_]+)\s*=\s*\d+\s*;", text, re.MULTILINE)
    return [n for n in names if n != "UNSPECIFIED"]


def test_every_proto_reason_is_catalogued_once_and_vice_versa() -> None:
    reasons = _proto_reasons()
    assert len(reasons) > 30
    assert len(reasons) == len(set(reasons))
    assert set(reasons) == set(CATALOGUE)
    assert "UNSPECIFIED" not in CATALOGUE


def test_catalogue_values_are_families() -> None:
    for reason, family in CATALOGUE.items():
        assert issubclass(family, QpiError)
        assert family is not QpiError, reason
        assert family.code != QpiError.code


def test_error_carries_reason_message_metadata_field() -> None:
    err = NotFoundError("JOB_NOT_FOUND", "Job abc was not found.", metadata={"job_id": "abc"})
    assert err.reason == "JOB_NOT_FOUND"
    assert err.message == str(err) == "Job abc was not found."
    assert err.metadata == {"job_id": "abc"}
    assert err.field is None
    assert err.code == "NOT_FOUND"
    assert "JOB_NOT_FOUND" in repr(err)


def test_metadata_values_become_strings() -> None:
    err = invalid_field("shots", "shots must be at most 5, got 7.", value=7, max_shots=5)
    assert isinstance(err, InvalidArgumentError)
    assert err.reason == "INVALID_FIELD"
    assert err.field == "shots"
    assert err.metadata == {"value": "7", "max_shots": "5"}


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown error reason"):
        QpiError("NO_SUCH_REASON", "x.")
    with pytest.raises(ValueError, match="unknown error reason"):
        error_for("NOPE", "x.")


def test_error_for_picks_the_catalogue_family() -> None:
    for reason, family in CATALOGUE.items():
        err = error_for(reason, "Something happened.", field="f")
        assert type(err) is family
        assert err.field == "f"


def test_errors_survive_pickling() -> None:
    err = invalid_field("circuits", "A job needs at least one circuit.", count=0)
    clone = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object
    assert type(clone) is InvalidArgumentError
    assert (clone.reason, clone.message, clone.metadata, clone.field) == (
        err.reason,
        err.message,
        err.metadata,
        err.field,
    )


def test_every_family_is_exported() -> None:
    families = {
        "InvalidArgumentError",
        "UnauthenticatedError",
        "PermissionDeniedError",
        "NotFoundError",
        "AlreadyExistsError",
        "FailedPreconditionError",
        "ResourceExhaustedError",
        "AbortedError",
        "UnavailableError",
        "UnimplementedError",
        "InternalError",
    }
    codes = {getattr(errors, name).code for name in families}
    assert len(codes) == len(families)
