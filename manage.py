#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mcpsettings.settings")
    from mcpsettings import devenv

    # Local development keeps generated keys in var/dev.env (git-ignored);
    # `manage.py dev` writes it on first run. Real environment variables win.
    devenv.load(create=len(sys.argv) > 1 and sys.argv[1] == "dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
