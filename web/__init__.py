"""The desk's console: a thin shell of HTTP handlers over worker's read model and store.

Handlers validate input, call a read-model query (``worker.archive``, ``worker.read``) or a
store command (``worker.store.triage``, ``worker.store.users``) and render a template.
No business rule lives here. Templates autoescape; a Content-Security-Policy forbids
inline script; every route but ``/healthz`` and the login page needs a login.
"""
