"""Errors of the tracking API and imports, each with a stable code."""

from trato.core.errors import BadRequest, Unauthorized


class MissingWriteKey(Unauthorized):
    code = "missing_write_key"


class InvalidWriteKey(Unauthorized):
    code = "invalid_write_key"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class BatchTooLarge(BadRequest):
    code = "batch_too_large"


class EventTooLarge(BadRequest):
    code = "event_too_large"


class InvalidEvent(BadRequest):
    code = "invalid_event"


class NothingAccepted(BadRequest):
    code = "no_event_accepted"


class SourceExists(BadRequest):
    code = "source_exists"
    status_code = 409


class UnsupportedFileType(BadRequest):
    code = "unsupported_file_type"


class NoIdentityColumn(BadRequest):
    code = "no_identity_column"


class InvalidFile(BadRequest):
    code = "invalid_file"


class InvalidRow(BadRequest):
    code = "invalid_row"
