"""The analysis: reads the tracking store, writes reports; never trains."""

from pipeline.environment import require

require()
