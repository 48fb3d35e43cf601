"""Delivery: the send API, the queue task that hands a message to its channel's adapter, retries,
possibly-sent safety and the channel adapters themselves (``trato.delivery.channels``)."""
