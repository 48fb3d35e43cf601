"""Errors of the customer memory, each with a stable code."""

from trato.core.errors import Conflict, InvalidInput, NotFound


class CustomerNotFound(NotFound):
    code = "customer_not_found"


class InvalidIdentity(InvalidInput):
    code = "invalid_identity"


class InvalidPhone(InvalidIdentity):
    code = "invalid_phone"


class InvalidEmail(InvalidIdentity):
    code = "invalid_email"


class InvalidTrait(InvalidInput):
    code = "invalid_trait"


class MergeRefused(Conflict):
    code = "merge_refused"


class MergeNotUndoable(Conflict):
    code = "merge_not_undoable"


class IdentityTaken(Conflict):
    code = "identity_taken"
