"""The secure twin service: an authenticated FastAPI over a registry of twin directories.

:mod:`.app` (the endpoints), :mod:`.users` (roles and hashed bearer tokens), :mod:`.twins`
(the registry and the diary each twin is kept on). ``migraine-twin serve`` runs it with uvicorn.
"""
