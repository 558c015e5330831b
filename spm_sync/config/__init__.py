"""The files a user writes (the config and the OKR file): models, loading, the problems a user
can fix, and their translation into the engines' parameters (`engine_settings`).

Config-side models carry the names users type; the engines get plain values from here, never
the models themselves (see docs/design-notes.md, "One name, one meaning").
"""
