"""Errors of the content domain, each with a stable code."""

from trato.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class CommunicationNotFound(NotFound):
    code = "communication_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class BlockNotFound(NotFound):
    code = "content_block_not_found"


class InvalidContent(InvalidInput):
    """A version's channel variants are not in the expected shape."""

    code = "invalid_content"


class TemplateError(InvalidInput):
    """A template cannot be compiled or rendered; ``code`` says why (syntax, unsafe, timeout, ...)."""

    code = "template_error"


class KeyTaken(Conflict):
    code = "key_taken"


class VersionLocked(Conflict):
    """A submitted version does not change; save a new version instead."""

    code = "version_locked"


class WrongVersionState(Conflict):
    code = "wrong_version_state"


class PreflightFailed(Conflict):
    """The version has preflight errors; ``details`` lists them."""

    code = "preflight_failed"


class WarningsNotAcknowledged(Conflict):
    code = "warnings_not_acknowledged"


class SelfApproval(Forbidden):
    """Four eyes: the author of a version can never approve it."""

    code = "self_approval"


class NotApproved(Conflict):
    """Only an approved version can be rendered for sending."""

    code = "version_not_approved"


class ChannelNotCovered(NotFound):
    code = "channel_not_covered"
