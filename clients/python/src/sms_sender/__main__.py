"""``python -m sms_sender``: the ``sms`` command."""
import sys

from .cli import main

sys.exit(main())
