"""Services the project runs for a team: the tracking server.

A Python without the server's packages stops here with one line that says how to fix it. Only
the server's: a machine that only serves needs none of the pipeline's (keras, scikit-learn).
"""

import importlib.util
import sys

REQUIRED = ("mlflow", "psycopg", "psutil")  # import names; requirements.txt pins them

if absent := [name for name in REQUIRED if importlib.util.find_spec(name) is None]:
    print(
        f"error: this Python ({sys.executable}) lacks the project's packages (no module "
        f"{', '.join(repr(n) for n in absent)}): activate the project's environment first "
        "(source .venv/bin/activate, after make venv) or use the make targets (make server)",
        file=sys.stderr,
    )
    sys.exit(2)
