"""The review console: the web pages where human moderators work the REVIEW queue.

Server-rendered (FastAPI + Jinja2, one CSS file, no JavaScript) over the verdict store.

- config.py     ConsoleSettings (MODGATE_CONSOLE_*)
- users.py      the tokens file: sha256(token) -> {user, role}; `python -m modgate.console.users new`
- sessions.py   signed session cookie, CSRF token, same-origin check
- security.py   CSP and related headers, the access log without content
- web.py        shared route plumbing: who is asking, checked forms, rendering
- queue.py      the REVIEW queue (filters) and leases (the insert is the claim)
- items.py      the item page's view model: scores, timeline marks, highlighted text, frames
- decisions.py  ALLOW / BLOCK -> label + audit + lease released, one transaction
- audit.py      the audit trail; export.py the labels as JSONL / CSV
- trace.py      the trace waterfall page's rows from the local trace store
- actions.py    what a reviewer does, audited (shared by pages and API)
- login.py, pages.py, admin.py, api.py: the routes; app.py wires them; serve.py runs uvicorn
"""
