"""The HI Service (Services Australia's Healthcare Identifiers Service): client and local emulator.

Plumbing like ``identifiers/``: it imports no app of the project, only Django's settings.
"""
