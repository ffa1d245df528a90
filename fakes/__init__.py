"""Platform-faithful fakes of WhatsApp, Telegram, Messenger and Instagram (see README.md)."""
