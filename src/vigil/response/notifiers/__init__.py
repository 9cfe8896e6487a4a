"""Built-in notifiers (entry points ``vigil.notifiers``): DingTalk, WeCom, Feishu, e-mail, Slack, a signed webhook.

The protocol every notifier implements is ``base.Notifier``; third-party notifiers load the same way.
"""
