"""Notification channels (DingTalk, WeCom, Feishu, e-mail, Slack, webhook): their records, the messages
rendered in each channel's language, sending with retries, and the delivery log."""
