"""Notifications: render Jinja templates into messages, deliver them per channel type.

``render`` turns a group's context into a JSON-able ``Message``; ``base`` holds the
``Sender`` protocol and the factory (the delivery backoff is ``responder.backoff``); one
module per channel type (slack, email, pagerduty, webhook, log) does the sending.
"""
