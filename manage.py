#!/usr/bin/env python
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        # A missing setting (DJANGO_SECRET_KEY, ...) is one line for an operator, not a traceback.
        sys.stderr.write(
            f"Configuration error: {error}\n"
            "Set it in the environment (docs/operators.md, \"Configuration\");"
            " for the demo, load var/demo.env as `make run` prints.\n"
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
