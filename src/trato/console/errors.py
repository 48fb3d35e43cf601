"""Errors of access control, each with a stable code."""

from trato.core.errors import Forbidden, InvalidInput, Unauthorized


class MissingToken(Unauthorized):
    code = "missing_token"


class InvalidToken(Unauthorized):
    code = "invalid_token"


class RoleRequired(Forbidden):
    code = "role_required"


class InvalidRole(InvalidInput):
    code = "invalid_role"


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
