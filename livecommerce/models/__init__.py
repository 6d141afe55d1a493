"""livecommerce models, split by area so each area's changes stay apart."""

from livecommerce.models.chat import *  # noqa: F403
from livecommerce.models.commerce import *  # noqa: F403
from livecommerce.models.rooms import *  # noqa: F403
