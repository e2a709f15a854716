"""`python -m pipeline.tracking`: say whether the configured tracking store answers."""

import sys

from pipeline.tracking import (
    StoreError,
    check_store,
    configure_client,
    is_shared_store,
    tracking_uri,
)


def main() -> None:
    configure_client()
    try:
        check_store()
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    uri = tracking_uri()
    print(f"tracking store {uri}: " + ("answers" if is_shared_store(uri) else "local"))


if __name__ == "__main__":
    main()
