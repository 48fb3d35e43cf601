"""Errors of the contact policy, each with a stable code."""

from trato.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class UnknownPurpose(InvalidInput):
    code = "unknown_purpose"


class UnknownTopic(InvalidInput):
    code = "unknown_topic"


class UnknownChannel(InvalidInput):
    code = "unknown_channel"


class InvalidPolicy(InvalidInput):
    code = "invalid_policy"


class PurposeExists(Conflict):
    code = "purpose_exists"


class PurposeInUse(Conflict):
    code = "purpose_in_use"


class PolicyObjectNotFound(NotFound):
    code = "policy_not_found"


class BadLink(Forbidden):
    """A signed link that was tampered with or made for something else."""

    code = "bad_link"


class ExpiredLink(Forbidden):
    code = "expired_link"
