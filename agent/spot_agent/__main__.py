"""``python -m spot_agent`` is the ``spot-agent`` command."""

from spot_agent.cli import main

raise SystemExit(main())
