"""Identity and accounts: who a caller is (:mod:`~chatio.accounts.identity`), registration, login and
rotating refresh tokens (:mod:`~chatio.accounts.service`), access tokens (:mod:`~chatio.accounts.tokens`),
password hashing (:mod:`~chatio.accounts.passwords`) and connections that end with their credential
(:mod:`~chatio.accounts.expiry`).

A login *session* is a refresh-token family: that is the one meaning of "session" in chatio. May import
:mod:`chatio.store`, :mod:`chatio.config`, :mod:`chatio.errors`, :mod:`chatio.schemas` and
:mod:`chatio.background`; never the chat domain, aiohttp or python-socketio.
"""
