"""The `/_control/inbound` and `/_control/batch` endpoints, written once for every fake: a
platform gives the model of one inbound event and how to turn it into its webhook payload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, ValidationError

from fakes.common import (
    CONTROL_PREFIX,
    ControlError,
    DeliveryAttempt,
    Json,
    Order,
    PlatformFake,
    deliveries_json,
    reorder,
)


class InboundEvent(BaseModel):
    duplicate: bool = False


class Batch(BaseModel):
    events: list[dict[str, Any]] = Field(min_length=1)
    order: Order = "as_given"
    seed: int | None = None
    duplicate: bool = False


E = TypeVar("E", bound=InboundEvent)


class Deliverer(Protocol):
    """Delivers built payloads; the Telegram fake queues them for getUpdates when no webhook is set."""

    async def __call__(self, payloads: list[Json], duplicate: bool) -> list[DeliveryAttempt]: ...


def inbound_router(
    fake: PlatformFake,
    model: type[E],
    build: Callable[[E, int], tuple[Json, str]],
    deliver: Deliverer | None = None,
) -> APIRouter:
    """`build(event, index)` returns the webhook payload and the platform's message id; `index`
    is the event's place in a batch, so that timestamps and ids increase in the given order."""

    async def send(payloads: list[Json], duplicate: bool) -> list[DeliveryAttempt]:
        if deliver is not None:
            return await deliver(payloads, duplicate)
        return await fake.deliver(payloads, duplicate=duplicate)

    router = APIRouter(prefix=CONTROL_PREFIX)

    @router.post("/inbound")
    async def inbound(request: Request) -> Json:
        event = parse_control(model, await control_body(request))
        payload, message_id = build(event, 0)
        attempts = await send([payload], event.duplicate)
        return {"message_id": message_id, "deliveries": deliveries_json(attempts)}

    @router.post("/batch")
    async def batch(request: Request) -> Json:
        order = parse_control(Batch, await control_body(request))
        built = [
            build(parse_control(model, event), index) for index, event in enumerate(order.events)
        ]
        by_id = {id(payload): message_id for payload, message_id in built}
        payloads = reorder([payload for payload, _ in built], order.order, order.seed)
        attempts = await send(payloads, order.duplicate)
        return {
            "message_ids": [message_id for _, message_id in built],
            "delivered_order": [by_id[id(payload)] for payload in payloads],
            "deliveries": deliveries_json(attempts),
        }

    return router


async def control_body(request: Request) -> object:
    try:
        return await request.json()
    except ValueError as error:
        raise ControlError(422, f"the body is not JSON: {error}") from error


M = TypeVar("M", bound=BaseModel)


def parse_control(model: type[M], data: object) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ControlError(422, str(error)) from error
