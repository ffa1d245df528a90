"""The gRPC API as an integrator sees it: generated stubs on a plain channel, the access token
in `authorization` metadata, status codes and problem types, reflection and health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import cast
from uuid import uuid4

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from chat4all.adapters.grpc.errors import domain_error
from chat4all.api.grpc import start_grpc_server
from chat4all.api.grpc.errors import PROBLEM_PREFIX, PROBLEM_TYPE, code_of
from chat4all.api.problems import status_of
from chat4all.domain import errors
from chat4all.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    common_pb2,
    conversation_pb2,
    conversation_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    message_pb2,
    message_pb2_grpc,
)

CHAT4ALL_SERVICES = {
    "chat4all.v1.AuthService",
    "chat4all.v1.ConversationService",
    "chat4all.v1.MessageService",
    "chat4all.v1.PresenceService",
    "chat4all.v1.EventService",
}


@pytest.fixture
async def channel(grpc_server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
        yield channel


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def problem_type(error: grpc.aio.AioRpcError) -> str | None:
    # aio metadata yields (key, value) pairs; the stubs type it as the sync API's.
    for key, value in cast(Iterable[tuple[str, str]], error.trailing_metadata() or ()):
        if key == PROBLEM_TYPE:
            return value
    return None


async def signed_in(channel: grpc.aio.Channel, name: str) -> tuple[str, str]:
    auth = auth_pb2_grpc.AuthServiceStub(channel)
    user = await auth.Register(
        auth_pb2.RegisterRequest(username=name, email=f"{name}@example.com", password="p" * 10)
    )
    tokens = await auth.Token(auth_pb2.TokenRequest(username=name, password="p" * 10))
    assert tokens.token_type == "bearer"
    return user.user_id, tokens.access_token


async def test_an_integrator_sends_and_pages_through_history(channel):
    alice_id, alice = await signed_in(channel, "alice")
    bob_id, bob = await signed_in(channel, "bob")
    me = await auth_pb2_grpc.AuthServiceStub(channel).GetMe(
        auth_pb2.GetMeRequest(), metadata=bearer(alice)
    )
    assert (me.user_id, me.username, me.email) == (alice_id, "alice", "alice@example.com")
    found = await auth_pb2_grpc.AuthServiceStub(channel).GetUserByUsername(
        auth_pb2.GetUserByUsernameRequest(username="bob"), metadata=bearer(alice)
    )
    assert (found.user_id, found.HasField("email")) == (bob_id, False)

    conversations = conversation_pb2_grpc.ConversationServiceStub(channel)
    created = await conversations.CreateConversation(
        conversation_pb2.CreateConversationRequest(
            type=conversation_pb2.CONVERSATION_TYPE_PRIVATE,
            members=[bob_id],
            metadata_json='{"ticket": 42}',
        ),
        metadata=bearer(alice),
    )
    assert created.created and created.conversation.metadata_json == '{"ticket":42}'
    cid = created.conversation.conversation_id

    messages = message_pb2_grpc.MessageServiceStub(channel)
    for i in range(1, 6):
        request = message_pb2.SendMessageRequest(
            conversation_id=cid,
            message_id=str(uuid4()),
            payload=message_pb2.Payload(type=common_pb2.PAYLOAD_TYPE_TEXT, text=f"m{i}"),
        )
        answer = await messages.SendMessage(request, metadata=bearer(alice))
        assert (answer.sequence_number, answer.status, answer.replayed) == (
            i,
            common_pb2.DELIVERY_STATUS_SENT,
            False,
        )
    replay = await messages.SendMessage(request, metadata=bearer(alice))
    assert (replay.sequence_number, replay.replayed) == (5, True)

    seen: list[int] = []
    token = ""
    while True:
        page = await messages.ListMessages(
            message_pb2.ListMessagesRequest(
                conversation_id=cid, after_sequence_number=0, page_size=2, page_token=token
            ),
            metadata=bearer(bob),
        )
        seen += [m.sequence_number for m in page.messages]
        token = page.next_page_token
        if not token:
            break
    assert seen == [1, 2, 3, 4, 5]
    last = await messages.GetMessage(
        message_pb2.GetMessageRequest(message_id=request.message_id), metadata=bearer(bob)
    )
    assert last.payload.text == "m5"
    assert set(last.channel_delivery[bob_id].channels) == {"internal"}
    read = await messages.MarkRead(
        message_pb2.MarkReadRequest(conversation_id=cid, up_to_sequence_number=5),
        metadata=bearer(bob),
    )
    assert read.last_read_sequence_number == 5


async def test_the_event_stream_over_the_wire(channel):
    alice_id, alice = await signed_in(channel, "alice")
    bob_id, bob = await signed_in(channel, "bob")
    created = await conversation_pb2_grpc.ConversationServiceStub(channel).CreateConversation(
        conversation_pb2.CreateConversationRequest(
            type=conversation_pb2.CONVERSATION_TYPE_PRIVATE, members=[bob_id]
        ),
        metadata=bearer(alice),
    )
    cid = created.conversation.conversation_id
    messages = message_pb2_grpc.MessageServiceStub(channel)
    for i in (1, 2, 3):
        await messages.SendMessage(
            message_pb2.SendMessageRequest(
                conversation_id=cid,
                message_id=str(uuid4()),
                payload=message_pb2.Payload(type=common_pb2.PAYLOAD_TYPE_TEXT, text=f"m{i}"),
            ),
            metadata=bearer(alice),
        )
    call = events_pb2_grpc.EventServiceStub(channel).Subscribe(
        events_pb2.SubscribeRequest(after={cid: 1}), metadata=bearer(bob)
    )
    try:
        ready = await asyncio.wait_for(call.read(), 10)
        assert isinstance(ready, events_pb2.Event) and ready.ready.user_id == bob_id
        for expected in (2, 3):
            event = await asyncio.wait_for(call.read(), 10)
            assert isinstance(event, events_pb2.Event)
            assert event.message_new.sequence_number == expected
            assert event.message_new.from_user_id == alice_id
    finally:
        call.cancel()


async def test_missing_or_wrong_credentials_are_unauthenticated(channel, platform):
    conversations = conversation_pb2_grpc.ConversationServiceStub(channel)
    request = conversation_pb2.ListConversationsRequest()
    user_id, token = await signed_in(channel, "alice")
    wrong = [
        (),
        (("authorization", f"Basic {token}"),),
        bearer("not-a-token"),
        # a user's own token never lets the caller act for someone else
        (*bearer(token), ("chat4all-actor", str(uuid4()))),
    ]
    for metadata in wrong:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await conversations.ListConversations(request, metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED, metadata
        assert problem_type(caught.value) == PROBLEM_PREFIX + "unauthenticated"

    # An internal token is refused by a server not told to take them.
    strict = await start_grpc_server(platform, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{strict.port}") as other:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await conversation_pb2_grpc.ConversationServiceStub(other).ListConversations(
                    request, metadata=(*bearer(token), ("chat4all-actor", user_id))
                )
            assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
            assert "does not take `chat4all-actor`" in (caught.value.details() or "")
    finally:
        await strict.stop(0)


async def test_domain_errors_become_status_codes_with_problem_types(channel):
    _, alice = await signed_in(channel, "alice")
    bob_id, bob = await signed_in(channel, "bob")
    conversations = conversation_pb2_grpc.ConversationServiceStub(channel)
    messages = message_pb2_grpc.MessageServiceStub(channel)
    cid = (
        await conversations.CreateConversation(
            conversation_pb2.CreateConversationRequest(
                type=conversation_pb2.CONVERSATION_TYPE_GROUP, members=[bob_id]
            ),
            metadata=bearer(alice),
        )
    ).conversation.conversation_id
    send = message_pb2.SendMessageRequest(
        conversation_id=cid,
        message_id=str(uuid4()),
        payload=message_pb2.Payload(type=common_pb2.PAYLOAD_TYPE_TEXT, text="once"),
    )
    await messages.SendMessage(send, metadata=bearer(alice))
    send.payload.text = "twice"

    cases = [
        (
            messages.SendMessage(send, metadata=bearer(alice)),
            grpc.StatusCode.ALREADY_EXISTS,
            "idempotency-conflict",
        ),
        (
            conversations.GetConversation(
                conversation_pb2.GetConversationRequest(conversation_id=str(uuid4())),
                metadata=bearer(alice),
            ),
            grpc.StatusCode.NOT_FOUND,
            "not-found",
        ),
        (
            conversations.GetConversation(
                conversation_pb2.GetConversationRequest(conversation_id="nope"),
                metadata=bearer(alice),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid-input",
        ),
        (
            conversations.AddMember(
                conversation_pb2.AddMemberRequest(conversation_id=cid, user_id=str(uuid4())),
                metadata=bearer(bob),
            ),
            grpc.StatusCode.PERMISSION_DENIED,
            "forbidden",
        ),
        (
            conversations.CreateConversation(
                conversation_pb2.CreateConversationRequest(
                    type=conversation_pb2.CONVERSATION_TYPE_GROUP,
                    members=[bob_id],
                    metadata_json='{"n": 99999999999999999999}',
                ),
                metadata=bearer(alice),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid-input",
        ),
        (
            auth_pb2_grpc.AuthServiceStub(channel).Register(
                auth_pb2.RegisterRequest(username="bob", email="b@example.com", password="p" * 9)
            ),
            grpc.StatusCode.ALREADY_EXISTS,
            "already-exists",
        ),
    ]
    for call, code, problem in cases:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert (caught.value.code(), problem_type(caught.value)) == (code, PROBLEM_PREFIX + problem)
        assert caught.value.details()


@pytest.mark.parametrize(
    "error",
    [
        errors.IdempotencyConflict("same id, other body"),
        errors.AlreadyExists("taken"),
        errors.Conflict("conflict"),
        errors.InvalidInput("bad"),
        errors.NotFound("gone"),
        errors.Unauthenticated("who?"),
        errors.Forbidden("no"),
        errors.LimitExceeded("slow down"),
        errors.Unavailable("later"),
        errors.Chat4AllError("other"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_domain_error_survives_the_trip_over_grpc(error):
    _, slug = status_of(error)
    status = grpc.aio.AioRpcError(
        code_of(error),
        grpc.aio.Metadata(),
        grpc.aio.Metadata((PROBLEM_TYPE, PROBLEM_PREFIX + slug)),
        error.detail,
        None,
    )
    back = domain_error(status, "test")
    assert (type(back), str(back)) == (type(error), error.detail)


def test_transport_failures_are_unavailable():
    status = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "refused", None
    )
    back = domain_error(status, "message")
    assert isinstance(back, errors.Unavailable)
    assert "message service cannot be reached" in str(back)


async def test_reflection_lists_the_services_and_describes_them(grpc_server):
    def reflect() -> tuple[set[str], list[str], list[str]]:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_server.port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            pool = DescriptorPool(database)
            events = pool.FindServiceByName("chat4all.v1.EventService")
            message = pool.FindMessageTypeByName("chat4all.v1.Message")
            return (
                set(database.get_services()),
                [m.name for m in events.methods],
                [f.name for f in message.fields][:3],
            )

    services, methods, fields = await asyncio.to_thread(reflect)
    assert services == CHAT4ALL_SERVICES | {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    assert methods == ["Subscribe", "Ack", "Typing"]
    assert fields == ["message_id", "conversation_id", "sequence_number"]


async def test_one_service_alone(platform):
    server = await start_grpc_server(platform, "127.0.0.1:0", services=["message"])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name, status in [
                ("", health_pb2.HealthCheckResponse.SERVING),
                ("chat4all.v1.MessageService", health_pb2.HealthCheckResponse.SERVING),
            ]:
                answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert answer.status == status
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health.Check(health_pb2.HealthCheckRequest(service="chat4all.v1.AuthService"))
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth_pb2_grpc.AuthServiceStub(channel).Token(auth_pb2.TokenRequest())
            assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)
    with pytest.raises(ValueError, match="unknown services"):
        await start_grpc_server(platform, "127.0.0.1:0", services=["files"])


async def test_an_unexpected_error_is_internal_and_logged(platform, internal_tokens, caplog):
    from chat4all.adapters.grpc import RemoteServiceError, connect

    server = await start_grpc_server(platform, "127.0.0.1:0", internal_tokens=internal_tokens)
    remote = connect(f"127.0.0.1:{server.port}", internal_tokens.token)

    async def broken(username: str) -> None:
        raise RuntimeError("a bug")

    platform.auth.user_id_of = broken
    try:
        with pytest.raises(RemoteServiceError, match="INTERNAL: an unexpected error occurred"):
            await remote.auth.user_id_of("anyone")
    finally:
        await remote.close()
        await server.stop(0)
    assert "unhandled error in a gRPC call" in caplog.text
