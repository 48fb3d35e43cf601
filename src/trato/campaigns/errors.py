"""Errors of the campaigns domain, each with a stable code."""

from trato.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class CampaignNotFound(NotFound):
    code = "campaign_not_found"


class InvalidCampaign(InvalidInput):
    """A campaign's settings are not valid; ``details`` names the field."""

    code = "invalid_campaign"


class CampaignStateConflict(Conflict):
    """The action does not fit the campaign's state (e.g. resuming a campaign that is done)."""

    code = "campaign_state_conflict"


class SelfApproval(Forbidden):
    """Four eyes: whoever created a marketing campaign cannot approve it."""

    code = "self_approval"


class ApprovalRequired(Conflict):
    code = "approval_required"


class BadTrackingLink(NotFound):
    code = "bad_tracking_link"
