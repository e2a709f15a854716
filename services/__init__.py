"""Services the project runs for a team: the tracking server."""

from pipeline.environment import require

require()
