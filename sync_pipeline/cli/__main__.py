import sys

from sync_pipeline.cli.entry import main

sys.exit(main())
