"""Lease reconciliation on heartbeats (pure rules)."""

from __future__ import annotations

from qpi.server.domain.leases import reconcile

A, B, C = ("a", 1), ("b", 1), ("c", 2)


def test_in_step_driver_changes_nothing() -> None:
    plan = reconcile(held={A, B}, leased={A, B}, confirmed={A, B})
    assert plan.cancel_on_driver == plan.requeue == plan.forget == frozenset()


def test_confirmed_lease_the_driver_lost_is_requeued() -> None:
    plan = reconcile(held={A}, leased={A, B}, confirmed={A, B})
    assert plan.requeue == {B}
    assert not plan.cancel_on_driver


def test_assignment_in_flight_is_not_judged() -> None:
    # B was leased and sent, but the driver had not accepted it when it sent this report.
    plan = reconcile(held={A}, leased={A, B}, confirmed={A})
    assert not plan.requeue


def test_job_the_server_no_longer_leases_is_cancelled_on_the_driver() -> None:
    plan = reconcile(held={A, C}, leased={A}, confirmed={A, C})
    assert plan.cancel_on_driver == {C}
    assert plan.forget == {C}  # and its capacity is freed


def test_just_answered_result_is_not_cancelled() -> None:
    plan = reconcile(held={A, B}, leased={A}, confirmed={A}, answered={B})
    assert not plan.cancel_on_driver


def test_unacknowledged_result_keeps_its_lease() -> None:
    # The store failed, the driver lists the result: nothing to requeue.
    plan = reconcile(held={B}, leased={B}, confirmed={B})
    assert plan.cancel_on_driver == plan.requeue == plan.forget == frozenset()
