"""Every table, imported in one place for Alembic and the test fixtures."""

from trato.archive import models as archive_models  # noqa: F401
from trato.console import models as console_models  # noqa: F401
from trato.content import models as content_models  # noqa: F401
from trato.core import audit  # noqa: F401
from trato.core.db import Base
from trato.customers import models as customers_models  # noqa: F401
from trato.delivery import letters as delivery_letters  # noqa: F401
from trato.delivery import models as delivery_models  # noqa: F401
from trato.ingest import models as ingest_models  # noqa: F401
from trato.policy import models as policy_models  # noqa: F401

metadata = Base.metadata
from trato.audiences import models as audiences_models  # noqa: F401,E402
from trato.campaigns import models as campaigns_models  # noqa: F401,E402
