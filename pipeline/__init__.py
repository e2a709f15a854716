"""The pipeline: one module per stage (MLproject is the map)."""

from pipeline.environment import require

require()  # a Python without the project's packages stops here, with one line
