"""Errors of the archive, each with a stable code."""

from trato.core.errors import Conflict, InvalidInput, NotFound, TratoError


class EntryNotFound(NotFound):
    code = "archive_entry_not_found"


class InvalidArchiveInput(InvalidInput):
    code = "invalid_archive_input"


class MessageAlreadyArchived(Conflict):
    """The delivery message id is archived already, with other content or for another customer."""

    code = "message_already_archived"


class ContentErased(TratoError):
    code = "archive_content_erased"
    status_code = 410


class ContentMismatch(Conflict):
    """The stored content (or what the reproducer makes of it) no longer has the archived hash."""

    code = "archive_content_mismatch"


class ReproducerMissing(TratoError):
    code = "archive_reproducer_missing"
    status_code = 503


class PartNotFound(NotFound):
    code = "archive_part_not_found"
