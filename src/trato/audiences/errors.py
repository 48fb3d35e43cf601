"""Errors of the audiences domain, each with a stable code."""

from trato.core.errors import Conflict, InvalidInput, NotFound


class SegmentNotFound(NotFound):
    code = "segment_not_found"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"


class InvalidSegment(InvalidInput):
    """A condition tree is not valid; ``details`` names the bad node by its path."""

    code = "invalid_segment"


class SegmentCycle(InvalidSegment):
    """A segment refers to itself, directly or through other segments."""

    code = "segment_cycle"


class SegmentInUse(Conflict):
    """Another segment refers to this one: it cannot be deleted."""

    code = "segment_in_use"


class NotAStaticList(Conflict):
    code = "not_a_static_list"


class InvalidList(InvalidInput):
    """An uploaded list is not a CSV of customer ids, e-mails or phone numbers."""

    code = "invalid_list"
