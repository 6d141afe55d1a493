"""campaigns models, split by area so each area's changes stay apart."""

from campaigns.models.journeys import *  # noqa: F403
from campaigns.models.mass import *  # noqa: F403
from campaigns.models.messaging import *  # noqa: F403
