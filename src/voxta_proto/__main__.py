"""``python -m voxta_proto``: the ``voxta`` command-line tool (see
[`voxta_proto.cli`][voxta_proto.cli])."""

from __future__ import annotations

import sys

from voxta_proto.cli import main

if __name__ == "__main__":
    sys.exit(main())
