"""Engines: the `Transcriber` interface and its providers, chosen by `factory.open_transcriber`."""
