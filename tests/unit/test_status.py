"""`lakehouse status`: typed states whose --json form keeps each service's details beside its
state and leaves out what a service does not have."""

from __future__ import annotations

import pytest

from lakehouse.launcher.status import ConnectorStatus, Restarts, ServiceStatus, StackStatus

pytestmark = pytest.mark.unit


def test_a_service_s_json_has_its_details_and_restarts_beside_its_state() -> None:
    last = {"reason": "exit 1", "at": 5.0, "ran_s": 3.0}
    counted = Restarts.of({"restarts": 2, "pid": 9, "last_exit": last})
    svc = ServiceStatus("ready", 9, "/l/s.log", supervised=True, restarts=counted, details={"master": "x"})
    assert svc.as_dict() == {
        "state": "ready",
        "pid": 9,
        "supervised": True,
        "log": "/l/s.log",
        "restarts": 2,
        "last_exit": {"reason": "exit 1", "at": 5.0, "ran_s": 3.0},
        "master": "x",
    }
    compose = ServiceStatus("down", None, "docker compose logs kafka")
    assert compose.as_dict() == {"state": "down", "pid": None, "log": "docker compose logs kafka"}
    assert Restarts.of(None) is None and Restarts.of({"restarts": 0}) == Restarts()


def test_the_stack_is_healthy_only_with_every_service_ready_and_connector_running() -> None:
    ready = ServiceStatus("ready", 1, "log")
    running = ConnectorStatus("RUNNING", ["RUNNING"])
    assert StackStatus({"a": ready}, {"c": running}).healthy
    assert not StackStatus({"a": ready, "b": ServiceStatus("starting", 2, "log")}, {"c": running}).healthy
    lost = ConnectorStatus("RUNNING", ["RUNNING"], error="slot lost")
    assert not StackStatus({"a": ready}, {"c": lost}).healthy
    assert StackStatus({}, {"c": running}).as_dict() == {
        "services": {},
        "connectors": {"c": {"state": "RUNNING", "tasks": ["RUNNING"]}},
    }
    assert ConnectorStatus("UNREGISTERED").as_dict() == {"state": "UNREGISTERED"}
