"""Alerts for focal points. The rules, outbox and subscriptions arrive with the alerts issue."""
