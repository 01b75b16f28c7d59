"""Notifications: render Jinja templates into messages, deliver them per channel type.

``render`` turns a group's context into a JSON-able ``Message``; ``base`` holds the
``Sender`` protocol, the factory and the delivery backoff the outbox retries with; one
module per channel type (slack, email, pagerduty, webhook, log) does the sending.
"""
