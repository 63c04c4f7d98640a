"""`python -m ptqtui`."""

from ptqtui.cli import main

raise SystemExit(main())
