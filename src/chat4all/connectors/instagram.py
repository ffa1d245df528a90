"""Instagram Messaging: the Messenger shape on graph.instagram.com, with tighter limits and
no delivery receipts (only `read`).

Account configuration: `ig_user_id`, `access_token`, `app_secret`, `verify_token`, `base_url`.
"""

from __future__ import annotations

from typing import ClassVar

from chat4all.connectors.messenger import MB, MessengerConnector
from chat4all.ports.connectors import Capabilities


class InstagramConnector(MessengerConnector):
    channel_type: ClassVar[str] = "instagram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        delivery_receipts=False,
        read_receipts=True,
        text_limit=1000,
        file_limits={"image": 8 * MB, "video": 25 * MB, "audio": 25 * MB},
        window_hours=24,
    )
    webhook_object: ClassVar[str] = "instagram"
    default_base: ClassVar[str] = "https://graph.instagram.com"
    account_node: ClassVar[str] = "ig_user_id"
