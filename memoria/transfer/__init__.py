"""Moving a deployment's data in and out: ``memoria export``, ``memoria import`` and
``memoria reindex`` (the commands are in :mod:`memoria.transfer_commands`)."""
